/*
 * store: the tracking store behind an interface (RFC 3885 §3.1, §3.3;
 * RFC 3886 §3.2, §3.3).  A backend is a struct of function pointers, like
 * OpenSMTPD's table backends and Dovecot's sql_db_vfuncs; callers never
 * see SQL or any backend type.  Both backends (SQLite, PostgreSQL) are
 * one SQL implementation (store_sql.c) over a driver each (sql_sqlite.c,
 * sql_pg.c): see store_sql.h.
 *
 * Durability model: the queue journal (src/queue) is the source of truth;
 * the store is an index of it.  Every tracking change is first written to
 * the journal and fdatasync'd with its batch; the store is then updated
 * in one transaction per batch and may lag behind after a crash (SQLite
 * commits without fsync).  At startup the queue replays its journal into
 * the store, so every write here is idempotent (an upsert keyed as
 * documented) and a replayed record whose message is gone (purged, or
 * never written to this store) is not an error: put_rcpt and set_done of
 * an unknown qid write nothing and return 0, so a replay never wedges on
 * one record.  Each batch may record the store's mark (set_mark): the
 * journal position up to which the store has applied every record, in the
 * batch's own transaction.  The queue drops a journal segment only once
 * sync() returned 0 after a batch whose mark lies past that segment:
 * sync() makes everything committed so far durable (SQLite: a full
 * checkpoint; PostgreSQL: a COMMIT is durable when it returns, since the
 * backend runs every session with synchronous_commit = on, so sync()
 * only checks that the connection is healthy and no batch is open).
 *
 * Threads: a handle is used by one thread at a time.  The daemon opens one
 * handle for the queue's writer thread and others for readers (MTQP
 * through store_reader.h, the purge job); backends allow that (SQLite:
 * WAL mode).
 *
 * Blocking: every call may block on disk or on the PostgreSQL server.
 * The PostgreSQL backend bounds that client-side (connect_timeout,
 * tcp_user_timeout, TCP keepalives, statement_timeout; see sql_pg.c), but
 * a server that is stopped (SIGSTOP) or hung while its kernel still
 * answers defeats all of them: the kernel ACKs what the client sends and
 * keepalive probes, so tcp_user_timeout and keepalives never fire, and
 * statement_timeout is the server's own timer, which does not run while
 * the server is stopped.  So never call the store on the event loop:
 * readers go through store_reader.h, whose callers bound each call with a
 * deadline.
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
/* lookup() returns at most this many messages, oldest first.  Only
 * messages with the certifier asked for count, so others sent with the
 * same envid (by someone who learnt it) never crowd out the genuine one:
 * they are never read. */
#define STORE_LOOKUP_MAX 64
/* A journal id (struct store_mark): 1 to this many printable ASCII
 * characters. */
#define STORE_JOURNAL_MAX 64
/* Submission (PRODUCT.md "Submission and automatic tracking"): a login
 * (RFC 4616 authcid, 255 octets), the secret msgtrkd made for it (the
 * unpadded base64 of at most MTRK_SECRET_MAX octets: 171 characters) and
 * the Subject kept for the sender's list. */
#define STORE_LOGIN_MAX 255
#define STORE_SECRET_MAX 171
#define STORE_SUBJECT_MAX 200
/* list_sent() returns at most this many messages (and this many when it
 * is asked for 0). */
#define STORE_SENT_MAX 1000

/* open() flags. */
enum {
	/* Only reads: SQLite opens the file read-only and never creates it
	 * or its schema (a missing file is "no tracking store at PATH");
	 * PostgreSQL runs every transaction read-only
	 * (default_transaction_read_only).  Writes then fail. */
	STORE_OPEN_READONLY = 1 << 0,
};

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
	/* Automatic tracking (submission_track): the login that submitted
	 * the message, the secret msgtrkd made for it (base64), and its
	 * Subject (printable ASCII, may be NULL).  put_msg keeps them (a
	 * "sent" row, purged with the message) when login and secret are
	 * both set, and never writes one without the other; list_sent()
	 * reads them back, lookup() and search() leave them NULL. */
	char *login;
	char *secret;
	char *subject;
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

/* What the store has applied of one journal: journal is the journal's
 * id (1..64 printable ASCII characters), pos the position just past the
 * last record applied (segment seg, byte offset off; each at most
 * INT64_MAX).  Keyed by journal, so several nodes may share one store
 * (PostgreSQL). */
struct store_mark {
	char journal[STORE_JOURNAL_MAX + 1];
	uint64_t seg;
	uint64_t off;
};

struct store;

struct store_backend {
	const char *name;
	/* Opens (creating as needed, unless STORE_OPEN_READONLY in flags)
	 * the store.  uri is the config value ("sqlite", or
	 * "postgresql://..."); data_dir holds embedded files (SQLite:
	 * tracking.db, -wal and -shm, each created mode 0600 whatever the
	 * umask).  A store written by an older version is upgraded (not
	 * when read-only).  Returns NULL with a message in err on failure. */
	struct store *(*open)(const char *uri, const char *data_dir, int flags,
	    char *err, size_t errsize);
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
	/* Upserts one recipient's record of message qid.  An unknown qid
	 * (a replayed state record whose message was purged, or never
	 * reached this store) writes nothing and returns 0. */
	int (*put_rcpt)(
	    struct store *, const char *qid, const struct store_rcpt *);
	/* Marks the message as no longer queued (all recipients final).
	 * An unknown qid is not an error (nothing is left to mark). */
	int (*set_done)(struct store *, const char *qid);
	/* Inside a batch: records the mark with the batch's writes (the
	 * same transaction), replacing the journal's earlier mark.
	 * Returns 0 or -1 (no batch open, an invalid journal id or
	 * position; a failure inside the batch poisons it). */
	int (*set_mark)(struct store *, const struct store_mark *);
	/* Reads the mark of m->journal (outside a batch, normally).
	 * Returns 1 (m->seg and m->off filled), 0 (none recorded) or -1. */
	int (*get_mark)(struct store *, struct store_mark *m);
	/* Finds the messages with this decoded envid whose certifier is
	 * exactly certifier (27 base64 characters), each with all its
	 * recipients in idx order, oldest first, at most STORE_LOOKUP_MAX.
	 * Messages without a certifier or with another one are never read:
	 * an index on (envid, certifier) answers, so a wrong secret costs
	 * what an unknown envid costs.  The caller computes the certifier
	 * from the secret presented (mtrk_certifier()).  Returns 1 (*out,
	 * *n_out set; free with store_msgs_free), 0 none, -1; on 0 or -1
	 * *out is NULL. */
	int (*lookup)(struct store *, const char *envid, const char *certifier,
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
	/* The messages login submitted with automatic tracking (those
	 * put_msg wrote with login and secret), newest first (arrival, then
	 * the order they were written), at most limit (0 or more than
	 * STORE_SENT_MAX: STORE_SENT_MAX), each with all its recipients in
	 * idx order and login, secret and subject set; the login is
	 * compared exactly (auth gives it canonical).  Returns 1 (*out,
	 * *n_out set; free with store_msgs_free), 0 none, -1; on 0 or -1
	 * *out is NULL. */
	int (*list_sent)(struct store *, const char *login, size_t limit,
	    struct store_msg **out, size_t *n_out);
	/* Makes everything committed so far durable.  -1 inside a batch,
	 * if readers kept it from completing (SQLite; retry later), or if
	 * the connection is not healthy (PostgreSQL: lost, or in a
	 * transaction). */
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

/* Frees what lookup returned. */
void store_msgs_free(struct store_msg *msgs, size_t n);

/* Frees the strings inside one message (not the struct itself). */
void store_msg_clear(struct store_msg *msg);

/* Input checks shared by the backends: each returns 0 if the record may
 * be written, or -1 with the message a backend reports (store_error())
 * in err, e.g. "put_msg: q1: certifier is not 27 characters". */

/* A queue id: 1 to STORE_QID_MAX characters of [0-9A-Za-z]. */
int store_check_qid(const char *qid);

/* A journal id: 1 to STORE_JOURNAL_MAX characters of printable ASCII
 * (0x20-0x7e), NUL-terminated within the array. */
int store_check_journal(const char *journal);

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
