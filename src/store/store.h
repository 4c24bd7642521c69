/*
 * store: the tracking store behind an interface (RFC 3885 §3.1, §3.3;
 * RFC 3886 §3.2, §3.3).  A backend is a struct of function pointers, like
 * OpenSMTPD's table backends and Dovecot's sql_db_vfuncs; callers never
 * see SQL or any backend type.
 *
 * Durability model: the queue journal (src/queue) is the source of truth.
 * Every tracking change is first written to the journal and fdatasync'd
 * with its batch; the store is then updated in one transaction per batch
 * and may lag behind after a crash (backends may commit without fsync).
 * At startup the queue replays its journal into the store, so every write
 * here must be idempotent (an upsert keyed as documented).  Before the
 * queue deletes a journal segment it calls sync(), after which everything
 * committed so far must be durable.
 *
 * Threads: a handle is used by one thread at a time.  The daemon opens one
 * handle for the queue's writer thread and one for readers (MTQP, the
 * purge job); backends must allow that (SQLite: WAL mode).
 *
 * Errors: functions return 0 on success, -1 on failure with a message in
 * the handle (store_error()); lookups return 1 found, 0 not found, -1
 * error.  Backends never log and never abort.
 */
#ifndef MSGTRK_STORE_H
#define MSGTRK_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Queue ids: 1-32 characters of [0-9A-Za-z] (PRODUCT.md). */
#define STORE_QID_MAX 32
/* RFC 3461 §4.4 ENVID: 100 decoded characters. */
#define STORE_ENVID_MAX 100
/* 27 base64 characters of a SHA-1 certifier (RFC 3885 §3.1). */
#define STORE_CERTIFIER_LEN 27
/* RFC 3463 status "x.y.z": 1 + 1 + 3 + 1 + 3. */
#define STORE_STATUS_MAX 9
/* Longest string any other field may hold; put_msg/put_rcpt refuse longer
 * ones, so callers cap what a peer sent (a reply line is at most 512
 * octets, RFC 5321 §4.5.3.1.5; an ORCPT 500, RFC 3461 §4.2). */
#define STORE_TEXT_MAX 2048
/* lookup_envid() returns at most this many messages, oldest first.  A
 * unique envid (RFC 3885 §3.2) is not known before its message is sent,
 * so the genuine message comes before any copies made to crowd it out. */
#define STORE_LOOKUP_MAX 64

/* RFC 3886 §3.3.3 actions, plus the state before any attempt. */
enum store_action {
	STORE_ACTION_QUEUED = 0, /* accepted, not tried yet (reported as
				    delayed with Will-Retry-Until) */
	STORE_ACTION_DELAYED,
	STORE_ACTION_DELIVERED,
	STORE_ACTION_TRANSFERRED,
	STORE_ACTION_RELAYED,
	STORE_ACTION_EXPANDED,
	STORE_ACTION_FAILED,
};

/* One recipient's tracking record.  Strings are NUL-terminated; NULL or 0
 * means absent.  Keyed by (qid, idx). */
struct store_rcpt {
	uint32_t idx; /* position in the transaction, from 0 */
	char *orcpt; /* "rfc822;a@b.test": ORCPT decoded, or the
				   RCPT address as rfc822 when none came */
	char *final_rcpt; /* "rfc822;a@b.test" */
	enum store_action action;
	char status[STORE_STATUS_MAX + 1]; /* "2.0.0", or "" */
	char *remote_mta; /* "dns; hop2.test" or "dns; [127.0.0.1]" */
	time_t last_attempt; /* 0: no attempt yet */
	time_t will_retry_until; /* 0: not queued */
	char *reply; /* the next hop's reply text, or NULL */
};

/* One tracked message.  Keyed by qid. */
struct store_msg {
	char qid[STORE_QID_MAX + 1];
	char *envid; /* decoded ENVID, NULL if none */
	char certifier[STORE_CERTIFIER_LEN + 1]; /* "" if not MTRK */
	char *sender; /* reverse-path without <>, "" for null */
	char *reporting_mta; /* our hostname at arrival */
	time_t arrival;
	time_t expires; /* end of retention (RFC 3885 §3.1) */
	int queued; /* 1 while in the queue: never purged */
	size_t nrcpt;
	struct store_rcpt *rcpts;
};

/* Filters for the operator's view (msgtrk log).  NULL/0 fields match
 * everything. */
struct store_query {
	const char *envid;
	const char *sender;
	const char *rcpt; /* matches orcpt or final_rcpt address */
	time_t since; /* arrival >= since */
	int action; /* -1 any, else enum store_action */
	size_t limit; /* 0: no limit */
};

/* SCAFFOLD (replaced by the store branch): the store's mark. */
#define STORE_JOURNAL_MAX 64
struct store_mark {
	char journal[STORE_JOURNAL_MAX + 1];
	uint64_t seg;
	uint64_t off;
};

struct store;

struct store_backend {
	const char *name;
	/* Opens (creating as needed) the store.  uri is the config value
	 * ("sqlite", or "postgresql://..."); data_dir holds embedded files.
	 * Returns NULL with a message in err on failure. */
	struct store *(*open)(
	    const char *uri, const char *data_dir, char *err, size_t errsize);
	void (*close)(struct store *);
	/* A batch: every put between begin and commit lands together.
	 * After a write in the batch returned -1, commit refuses (-1) and
	 * the caller must roll back.  Writes outside a batch are each
	 * atomic on their own.  rollback with no batch open returns 0. */
	int (*begin)(struct store *);
	int (*commit)(struct store *);
	int (*rollback)(struct store *);
	/* Upserts the message and all its recipients. */
	int (*put_msg)(struct store *, const struct store_msg *);
	/* Upserts one recipient's record; -1 if the message is unknown
	 * (put_msg must come first). */
	int (*put_rcpt)(
	    struct store *, const char *qid, const struct store_rcpt *);
	/* Marks the message as no longer queued (all recipients final).
	 * An unknown qid is not an error (nothing is left to mark). */
	int (*set_done)(struct store *, const char *qid);
	int (*set_mark)(struct store *, const struct store_mark *);
	int (*get_mark)(struct store *, struct store_mark *m);
	/* Finds every message with this decoded envid (several senders may
	 * pick the same one; the caller checks each certifier), at most
	 * STORE_LOOKUP_MAX, oldest first, each with all its recipients in
	 * idx order.  On 1, *out is an array of *n_out messages, freed with
	 * store_msgs_free(); on 0 or -1, *out is NULL. */
	int (*lookup_envid)(struct store *, const char *envid,
	    struct store_msg **out, size_t *n_out);
	/* Deletes messages whose retention ended before now (expires <
	 * now) and that are not queued, with their recipients.  *n_out: how
	 * many messages.  Outside a batch it commits in small chunks so a
	 * writer on another handle never waits long. */
	int (*purge)(struct store *, time_t now, size_t *n_out);
	/* Calls fn for each matching (message, recipient), newest arrival
	 * first, at most q->limit calls; fn returns 0 to go on, -1 to stop
	 * (search then returns 0).  The message passed has nrcpt 0; its
	 * strings and the recipient's are valid during the call only, and
	 * fn must not use this handle.  rcpt matches the address part of
	 * "type;addr" ignoring ASCII case; sender ignores ASCII case; envid
	 * is exact. */
	int (*search)(struct store *, const struct store_query *,
	    int (*fn)(
	        void *arg, const struct store_msg *, const struct store_rcpt *),
	    void *arg);
	/* Makes everything committed so far durable.  -1 inside a batch,
	 * or if readers kept it from completing (retry later). */
	int (*sync)(struct store *);
	const char *(*error)(struct store *);
};

extern const struct store_backend store_backend_sqlite;
/* store_pg.c: compiled in with libpq (meson.build then defines
 * STORE_HAVE_PG). */
extern const struct store_backend store_backend_pg;

/* The backend for a config value: "sqlite" or a postgresql:// URI.
 * Returns NULL if none matches. */
const struct store_backend *store_backend_find(const char *uri);

/* Frees what lookup_envid returned. */
void store_msgs_free(struct store_msg *msgs, size_t n);

/* Frees the strings inside one message (not the struct itself). */
void store_msg_clear(struct store_msg *msg);

/* Input checks shared by the backends: each returns 0 if the record may
 * be written, or -1 with the message a backend reports (store_error())
 * in err, e.g. "put_msg: q1: certifier is not 27 characters". */

/* A queue id: 1 to STORE_QID_MAX characters of [0-9A-Za-z]. */
int store_check_qid(const char *qid);

/* What put_rcpt(qid, r) would write; op ("put_rcpt", or "put_msg" for the
 * recipients of a message) starts the message. */
int store_check_rcpt(const char *op, const char *qid,
    const struct store_rcpt *r, char *err, size_t errsize);

/* What put_msg(m) would write, its recipients included. */
int store_check_msg(const struct store_msg *m, char *err, size_t errsize);

/* The search key of an address: the part after ';' of "type;addr" (or a
 * bare address), trimmed of spaces and tabs and lower-cased (ASCII), into
 * dst.  Returns -1 if it does not fit in size bytes. */
int store_addr_key(const char *in, char *dst, size_t size);

/* Returns the RFC 3886 action name ("delayed" for QUEUED). */
const char *store_action_name(enum store_action a);

#endif /* MSGTRK_STORE_H */
