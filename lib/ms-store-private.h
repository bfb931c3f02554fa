#ifndef MS_STORE_PRIVATE_H
#define MS_STORE_PRIVATE_H

/* Shared by ms-store.c (connections, reads, expiry) and ms-store-learn.c. */
#include "ms-resp.h"
#include "ms-store.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <sys/time.h>

#define MS_STORE_MAX_KEY 600

/* A slot: ham u20, spam u19, recent u1, most significant bit first. */
#define MS_STORE_SLOT_BITS    40
#define MS_STORE_SPAM_OFFSET  20 /* bit offset of the spam count; ham's is 0 */
#define MS_STORE_SPAM_ONE     2ULL
#define MS_STORE_HAM_ONE      (1ULL << 20)
#define MS_STORE_SLOT_SPAM(v) ((uint32_t)(((v) >> 1) & 0x7ffff))
#define MS_STORE_SLOT_HAM(v)  ((uint32_t)((v) >> 20))

/* A slot whose spam or ham count reaches this after a learn is halved: an
 * INCRBY of the whole slot past a count's maximum would carry into the
 * next field. The margin is far more than one batch adds to a slot. */
#define MS_STORE_SPAM_HIGH ((1u << 19) - (1u << 14))
#define MS_STORE_HAM_HIGH  ((1u << 20) - (1u << 15))

/* Every learn sweeps this fraction of the table for expiry: a full cycle
 * takes 65,536 learns, so a token seen once is forgotten only after that many
 * further learns passed without it. */
#define MS_STORE_SWEEP_CYCLE_LEARNS 65536

struct ms_redis_conn {
	char *address;
	redisContext *ctx;
	/* counts connections made: a pipelined request whose connection was
	 * dropped must not read its replies from the next one */
	unsigned long generation;
	/* replies of commands sent without waiting, read before the next one */
	unsigned int pending;
	bool sweep_loaded;
};

/* A slot a learn left with a count at its high water, and its value then. */
struct ms_store_full {
	unsigned int slot;
	uint64_t value;
};

/* A learn's buffers (ms-store-learn.c), reused from learn to learn. The
 * four token arrays are one allocation, starting at full. */
struct ms_store_learn_buf {
	unsigned int *slots;        /* the batch's token slots, then its distinct ones */
	unsigned int *hits;         /* tokens per distinct slot */
	unsigned int *fresh;        /* slots the batch made hold sightings after none */
	struct ms_store_full *full; /* slots at a count's high water */
	size_t capacity;
	char *old_cls; /* per message: its class before the batch */
	size_t msgs_capacity;
};

struct ms_store {
	struct ms_redis_conn write;
	struct ms_redis_conn read; /* address NULL: read from write */
	char *prefix;
	struct timeval timeout;
	unsigned int table_bits;
	char sweep_sha[41];  /* as Redis named it on SCRIPT LOAD */
	struct ms_resp resp; /* the token commands, formatted */
	struct ms_store_learn_buf learn;
};

struct ms_store_keys {
	char meta[MS_STORE_MAX_KEY];
	char digests[MS_STORE_MAX_KEY];
	char table[MS_STORE_MAX_KEY];
};

redisContext *ms_store_conn_get(struct ms_store *store, bool for_read, char *err, size_t errlen);
void ms_store_conn_drop(struct ms_redis_conn *conn);
struct ms_redis_conn *ms_store_conn_of(struct ms_store *store, redisContext *ctx);
int ms_store_reply_failed(struct ms_store *store, redisContext *ctx, redisReply *reply, char *err,
                          size_t errlen);
int ms_store_flush_output(redisContext *ctx);
/* Read a reply nobody waits for, allocating nothing; error gets its error
 * message ("" if none). On failure the caller drops the connection. */
int ms_store_discard_reply(redisContext *ctx, char *error, size_t size);
int ms_store_prepare_read(struct ms_store *store, redisContext *ctx);
redisReply *ms_store_get_reply(struct ms_store *store, redisContext *ctx);
int ms_store_make_keys(const struct ms_store *store, const char *user, struct ms_store_keys *keys,
                       char *err, size_t errlen);
unsigned int ms_store_token_slot(const struct ms_store *store, uint64_t hash);
uint64_t ms_store_reply_uint(const redisReply *reply);
bool ms_store_is_array(const redisReply *reply, size_t elements);
/* Keep the sweep script's SHA-1 from a SCRIPT LOAD reply; -1 if it is not one. */
int ms_store_note_sweep(struct ms_store *store, struct ms_redis_conn *conn,
                        const redisReply *reply);

/* A reply read without redisReply objects (ms-store-reply.c): integer is
 * called for each integer (task->parent NULL: the reply itself; task->idx:
 * its index in the array above); strings, statuses, nil elements and arrays
 * nested more than once only set unexpected; the first error is kept. */
struct ms_reply_sink {
	void (*integer)(struct ms_reply_sink *sink, const redisReadTask *task, long long value);
	void *data;
	int root_type; /* REDIS_REPLY_* of the whole reply */
	size_t root_elements;
	int error_at; /* index of the first error element, -1 if the reply */
	char error[160];
	bool unexpected;
};

int ms_store_read_sink(struct ms_store *store, redisContext *ctx, struct ms_reply_sink *sink,
                       char *err, size_t errlen);
/* Formats the sink's error (or "unexpected reply") and drops the
 * connection; returns -1. */
int ms_store_sink_failed(struct ms_store *store, redisContext *ctx,
                         const struct ms_reply_sink *sink, char *err, size_t errlen);
/* The reply to read is an array of count elements, integers >= 0 or, if
 * nested, arrays of them: put() gets each integer in order, with the index
 * of its element and its index in that element (MS_STORE_REPLY_INT if the
 * element is the integer), read straight from the reader's buffer.
 * Returns 1 when read, 0 if the reply is something else (nothing of it is
 * taken, though put() may have had some of it: read it with
 * ms_store_read_sink, which tells what it is), -1 on a connection error
 * (err set, connection dropped). */
#define MS_STORE_REPLY_INT ((size_t)-1)
typedef void ms_store_uint_fn(void *context, size_t idx, size_t sub, uint64_t value);
int ms_store_read_uints(struct ms_store *store, redisContext *ctx, size_t count, bool nested,
                        ms_store_uint_fn *put, void *context, char *err, size_t errlen);
/* Append the command in store->resp to ctx's output. */
int ms_store_append_resp(struct ms_store *store, redisContext *ctx);
/* Append a command of string arguments, NULL after the last, formatted in
 * store->resp: redisAppendCommand() formats each argument with sprintf(),
 * which was a twentieth of a learn's client time for its ten small
 * commands. */
int ms_store_append_strs(struct ms_store *store, redisContext *ctx, ...) __attribute__((sentinel));

#endif
