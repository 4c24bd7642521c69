/*
 * workers: see workers.h.  One mutex guards the waiting and finished
 * lists and every job's state; the loop learns of finished jobs through an
 * eventfd, as the queue's writer does.
 */
#include <sys/eventfd.h>
#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/workers.h"

enum job_state {
	JOB_WAITING, /* in w->waiting */
	JOB_RUNNING, /* run() on a thread */
	JOB_FINISHED, /* in w->finished: done() comes on the loop */
	JOB_ABANDONED, /* running, and nobody waits for it any more */
};

struct workers_job {
	struct workers *w;
	TAILQ_ENTRY(workers_job) entry;
	void (*run)(void *, void *);
	void (*done)(void *, enum workers_status);
	void (*abandon)(void *);
	void *arg;
	enum job_state state;
	struct event *timer; /* the deadline; loop thread only */
};

TAILQ_HEAD(job_list, workers_job);

struct workers {
	struct event_base *base;
	char name[32];
	struct workers_ops ops;
	void *pool_arg;
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	struct job_list waiting, finished;
	size_t nwaiting;
	size_t pending; /* loop thread only */
	int stopping;
	unsigned int nthreads;
	pthread_t thr[WORKERS_THREADS_MAX];
	unsigned int next_index; /* under mtx: the starting thread's index */
	int efd;
	struct event *ev;
};

static void
job_free(struct workers_job *j)
{
	if (j->timer != NULL)
		event_free(j->timer);
	free(j);
}

static void *
thread_main(void *arg)
{
	struct workers *w = arg;
	struct workers_job *j;
	unsigned int index;
	void *ctx = NULL;
	int ok = 1;
	char tname[16];

	pthread_mutex_lock(&w->mtx);
	index = w->next_index++;
	pthread_mutex_unlock(&w->mtx);
	snprintf(tname, sizeof(tname), "%.15s", w->name);
	(void)pthread_setname_np(pthread_self(), tname);
	if (w->ops.init != NULL)
		ctx = w->ops.init(w->pool_arg, index, &ok);
	if (!ok)
		return NULL;
	pthread_mutex_lock(&w->mtx);
	for (;;) {
		while (TAILQ_EMPTY(&w->waiting) && !w->stopping)
			pthread_cond_wait(&w->cond, &w->mtx);
		if ((j = TAILQ_FIRST(&w->waiting)) == NULL)
			break; /* stopping, and nothing waits */
		TAILQ_REMOVE(&w->waiting, j, entry);
		w->nwaiting--;
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&w->mtx);

		j->run(ctx, j->arg);

		pthread_mutex_lock(&w->mtx);
		if (j->state == JOB_ABANDONED) {
			pthread_mutex_unlock(&w->mtx);
			if (j->abandon != NULL)
				j->abandon(j->arg);
			/* The loop freed the timer when it gave up. */
			free(j);
			pthread_mutex_lock(&w->mtx);
			continue;
		}
		j->state = JOB_FINISHED;
		/* The loop is woken for the first finished job only: it
		 * takes the whole list after reading the eventfd, so a job
		 * that finds the list not empty is taken with the others. */
		if (TAILQ_EMPTY(&w->finished)) {
			uint64_t one = 1;

			/* Cannot fail short of a broken descriptor: the
			 * counter saturates only after 2^64-2 wake-ups. */
			if (write(w->efd, &one, sizeof(one)) != sizeof(one))
				abort();
		}
		TAILQ_INSERT_TAIL(&w->finished, j, entry);
	}
	pthread_mutex_unlock(&w->mtx);
	if (w->ops.fini != NULL)
		w->ops.fini(w->pool_arg, ctx);
	return NULL;
}

/* Runs done() for every finished job (loop thread). */
static void
on_finished(evutil_socket_t fd, short ev, void *arg)
{
	struct workers *w = arg;
	struct job_list list;
	struct workers_job *j;

	(void)ev;
	if (fd != -1) {
		uint64_t n;

		(void)!read(fd, &n, sizeof(n)); /* EAGAIN: already reset */
	}
	TAILQ_INIT(&list);
	pthread_mutex_lock(&w->mtx);
	TAILQ_CONCAT(&list, &w->finished, entry);
	pthread_mutex_unlock(&w->mtx);
	while ((j = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, j, entry);
		w->pending--;
		j->done(j->arg, WORKERS_DONE);
		job_free(j);
	}
}

/* A job's deadline (loop thread). */
static void
on_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct workers_job *j = arg;
	struct workers *w = j->w;

	(void)fd;
	(void)ev;
	pthread_mutex_lock(&w->mtx);
	switch (j->state) {
	case JOB_WAITING:
		TAILQ_REMOVE(&w->waiting, j, entry);
		w->nwaiting--;
		pthread_mutex_unlock(&w->mtx);
		w->pending--;
		j->done(j->arg, WORKERS_TIMEOUT);
		if (j->abandon != NULL)
			j->abandon(j->arg);
		job_free(j);
		return;
	case JOB_RUNNING:
		/* Its thread frees it when run() returns. */
		j->state = JOB_ABANDONED;
		event_free(j->timer);
		j->timer = NULL;
		pthread_mutex_unlock(&w->mtx);
		w->pending--;
		j->done(j->arg, WORKERS_TIMEOUT);
		return;
	default:
		/* Finished meanwhile: on_finished calls done(). */
		pthread_mutex_unlock(&w->mtx);
		return;
	}
}

struct workers *
workers_new(struct event_base *base, const char *name, unsigned int nthreads,
    const struct workers_ops *ops, void *pool_arg, char *err, size_t errsize)
{
	struct workers *w;
	unsigned int i;

	if (nthreads == 0 || nthreads > WORKERS_THREADS_MAX) {
		snprintf(err, errsize, "%s: %u threads (1 to %d)", name,
		    nthreads, WORKERS_THREADS_MAX);
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		snprintf(err, errsize, "%s: out of memory", name);
		return NULL;
	}
	w->base = base;
	snprintf(w->name, sizeof(w->name), "%s", name);
	if (ops != NULL)
		w->ops = *ops;
	w->pool_arg = pool_arg;
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->cond, NULL);
	TAILQ_INIT(&w->waiting);
	TAILQ_INIT(&w->finished);
	if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (w->ev = event_new(
	         base, w->efd, EV_READ | EV_PERSIST, on_finished, w)) == NULL ||
	    event_add(w->ev, NULL) == -1) {
		snprintf(err, errsize, "%s: %s", name, strerror(errno));
		workers_free(w);
		return NULL;
	}
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&w->thr[i], NULL, thread_main, w) != 0) {
			snprintf(
			    err, errsize, "%s: cannot start a thread", name);
			workers_free(w);
			return NULL;
		}
		w->nthreads++;
	}
	return w;
}

struct workers_job *
workers_submit(struct workers *w, void (*run)(void *, void *),
    void (*done)(void *, enum workers_status), void (*abandon)(void *),
    void *arg, unsigned int deadline_ms)
{
	struct workers_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->w = w;
	j->run = run;
	j->done = done;
	j->abandon = abandon;
	j->arg = arg;
	j->state = JOB_WAITING;
	if (deadline_ms > 0) {
		struct timeval tv = { (time_t)(deadline_ms / 1000),
			(suseconds_t)(deadline_ms % 1000) * 1000 };

		if ((j->timer = evtimer_new(w->base, on_deadline, j)) == NULL ||
		    evtimer_add(j->timer, &tv) == -1) {
			job_free(j);
			errno = ENOMEM;
			return NULL;
		}
	}
	pthread_mutex_lock(&w->mtx);
	if (w->stopping || w->nwaiting >= WORKERS_QUEUE_MAX) {
		int e = w->stopping ? ESHUTDOWN : EAGAIN;

		pthread_mutex_unlock(&w->mtx);
		job_free(j);
		errno = e;
		return NULL;
	}
	TAILQ_INSERT_TAIL(&w->waiting, j, entry);
	w->nwaiting++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mtx);
	w->pending++;
	return j;
}

void
workers_cancel(struct workers_job *j)
{
	struct workers *w = j->w;

	pthread_mutex_lock(&w->mtx);
	switch (j->state) {
	case JOB_WAITING:
		TAILQ_REMOVE(&w->waiting, j, entry);
		w->nwaiting--;
		break;
	case JOB_FINISHED:
		TAILQ_REMOVE(&w->finished, j, entry);
		break;
	case JOB_RUNNING:
		j->state = JOB_ABANDONED;
		if (j->timer != NULL) {
			event_free(j->timer);
			j->timer = NULL;
		}
		pthread_mutex_unlock(&w->mtx);
		w->pending--;
		return;
	case JOB_ABANDONED:
		/* done(TIMEOUT) already ran: the handle was no longer valid. */
		pthread_mutex_unlock(&w->mtx);
		return;
	}
	pthread_mutex_unlock(&w->mtx);
	w->pending--;
	if (j->abandon != NULL)
		j->abandon(j->arg);
	job_free(j);
}

size_t
workers_pending(const struct workers *w)
{
	return w->pending;
}

void
workers_free(struct workers *w)
{
	struct workers_job *j;
	struct job_list left;
	unsigned int i;

	if (w == NULL)
		return;
	TAILQ_INIT(&left);
	pthread_mutex_lock(&w->mtx);
	w->stopping = 1;
	TAILQ_CONCAT(&left, &w->waiting, entry);
	w->nwaiting = 0;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mtx);
	while ((j = TAILQ_FIRST(&left)) != NULL) {
		TAILQ_REMOVE(&left, j, entry);
		w->pending--;
		j->done(j->arg, WORKERS_STOPPED);
		job_free(j);
	}
	for (i = 0; i < w->nthreads; i++)
		pthread_join(w->thr[i], NULL);
	if (w->ev != NULL) {
		on_finished(-1, 0, w);
		event_free(w->ev);
	}
	if (w->efd != -1)
		close(w->efd);
	pthread_mutex_destroy(&w->mtx);
	pthread_cond_destroy(&w->cond);
	free(w);
}
