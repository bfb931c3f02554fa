#include "ms-store-private.h"
#include "ms-util.h"
#include "ms-store-scripts.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* Tokens per BITFIELD_RO command. Redis allocates a command's argument
 * array and, growing it one operation at a time, BITFIELD's array of
 * operations: past 14 KB (448 tokens) both leave jemalloc's small size
 * classes, and a whole classification in one command cost Redis 7-9 % more
 * CPU than in commands of 256 tokens (bench/README.md, "Client CPU per
 * message"). The commands are written out one by one, so neither
 * mailsift's command buffer nor hiredis's output buffer holds more than
 * one (34 bytes a token). */
#define MS_STORE_FETCH_CHUNK 256

struct ms_store *
ms_store_create(const char *address, const char *read_address, const char *prefix,
                unsigned int table_bits, unsigned int timeout_msecs)
{
	struct ms_store *store;

	if (table_bits < MS_STORE_TABLE_BITS_MIN || table_bits > MS_STORE_TABLE_BITS_MAX)
		return NULL;
	if ((store = calloc(1, sizeof(*store))) == NULL)
		return NULL;
	store->write.address = strdup(address);
	store->prefix = strdup(prefix);
	if (read_address != NULL && *read_address != '\0')
		store->read.address = strdup(read_address);
	if (store->write.address == NULL || store->prefix == NULL ||
	    (read_address != NULL && *read_address != '\0' && store->read.address == NULL)) {
		ms_store_destroy(&store);
		return NULL;
	}
	store->table_bits = table_bits;
	store->timeout.tv_sec = timeout_msecs / 1000;
	store->timeout.tv_usec = (timeout_msecs % 1000) * 1000;
	ms_resp_init(&store->resp);
	return store;
}

void
ms_store_conn_drop(struct ms_redis_conn *conn)
{
	if (conn->ctx != NULL)
		redisFree(conn->ctx);
	conn->ctx = NULL;
	conn->pending = 0;
	conn->sweep_loaded = false;
}

void
ms_store_destroy(struct ms_store **storep)
{
	struct ms_store *store = *storep;

	if (store == NULL)
		return;
	/* The last learn's marks, sweep and token count were sent without
	 * waiting: Redis drops what it has not run yet of a client that went
	 * away, so their replies are read first (within the timeout; an
	 * error only ends the wait). */
	if (store->write.ctx != NULL && store->write.pending > 0)
		(void)ms_store_prepare_read(store, store->write.ctx);
	ms_store_conn_drop(&store->write);
	ms_store_conn_drop(&store->read);
	free(store->write.address);
	free(store->read.address);
	free(store->prefix);
	ms_resp_free(&store->resp);
	free(store->learn.full); /* and the other token arrays: one block */
	free(store->learn.old_cls);
	free(store);
	*storep = NULL;
}

static redisContext *
connect_address(const char *address, const struct timeval *timeout)
{
	char host[256];
	const char *colon;
	size_t len;
	int port;

	if (strncmp(address, "unix:", 5) == 0)
		return redisConnectUnixWithTimeout(address + 5, *timeout);
	if (address[0] == '/')
		return redisConnectUnixWithTimeout(address, *timeout);
	colon = strrchr(address, ':');
	len = colon != NULL ? (size_t)(colon - address) : strlen(address);
	port = colon != NULL ? atoi(colon + 1) : 6379;
	if (len == 0 || len >= sizeof(host) || port <= 0 || port > 65535)
		return NULL;
	memcpy(host, address, len);
	host[len] = '\0';
	return redisConnectWithTimeout(host, port, *timeout);
}

/* The connection for reads (replica if configured) or writes, connecting
 * lazily: a Redis that went away is retried on the next call. */
redisContext *
ms_store_conn_get(struct ms_store *store, bool for_read, char *err, size_t errlen)
{
	struct ms_redis_conn *conn =
	        for_read && store->read.address != NULL ? &store->read : &store->write;

	if (conn->ctx != NULL)
		return conn->ctx;
	conn->ctx = connect_address(conn->address, &store->timeout);
	if (conn->ctx == NULL) {
		ms_error(err, errlen, "redis %s: bad address or out of memory", conn->address);
		return NULL;
	}
	if (conn->ctx->err != 0 || redisSetTimeout(conn->ctx, store->timeout) != REDIS_OK) {
		ms_error(err, errlen, "redis %s: %s", conn->address,
		         conn->ctx->err != 0 ? conn->ctx->errstr : strerror(errno));
		ms_store_conn_drop(conn);
		return NULL;
	}
	conn->generation++;
	return conn->ctx;
}

/* After an I/O or protocol error the stream may hold half a reply: start
 * over with a new connection next time. */
int
ms_store_reply_failed(struct ms_store *store, redisContext *ctx, redisReply *reply, char *err,
                      size_t errlen)
{
	struct ms_redis_conn *conn = ms_store_conn_of(store, ctx);

	if (reply == NULL)
		ms_error(err, errlen, "redis %s: %s", conn->address,
		         ctx->err != 0 ? ctx->errstr : "no reply");
	else if (reply->type == REDIS_REPLY_ERROR)
		ms_error(err, errlen, "redis %s: %.*s", conn->address, (int)reply->len, reply->str);
	else
		ms_error(err, errlen, "redis %s: unexpected reply type %d", conn->address,
		         reply->type);
	if (reply != NULL)
		freeReplyObject(reply);
	ms_store_conn_drop(conn);
	return -1;
}

/* Write the pipeline out. A Redis that died mid-write must not kill the
 * process with SIGPIPE, and the library cannot change the process's
 * handler: block it for the write and consume what the write raised. */
int
ms_store_flush_output(redisContext *ctx)
{
	static const struct timespec no_wait = {0, 0};
	sigset_t pipe_set, old_set, pending;
	bool was_pending;
	int done = 0, ret = 0;

	if (sdslen(ctx->obuf) == 0)
		return 0;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
	while (!done && ret == 0) {
		if (redisBufferWrite(ctx, &done) != REDIS_OK)
			ret = -1;
	}
	if (!was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1)
		(void)sigtimedwait(&pipe_set, NULL, &no_wait);
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	return ret;
}

struct ms_redis_conn *
ms_store_conn_of(struct ms_store *store, redisContext *ctx)
{
	return ctx == store->read.ctx ? &store->read : &store->write;
}

/* Before reading the next reply: the pipeline written out, and the replies
 * to commands sent earlier without waiting (they come first) skipped. */
int
ms_store_prepare_read(struct ms_store *store, redisContext *ctx)
{
	struct ms_redis_conn *conn = ms_store_conn_of(store, ctx);
	char error[16];

	if (ms_store_flush_output(ctx) < 0)
		return -1;
	for (; conn->pending > 0; conn->pending--) {
		if (ms_store_discard_reply(ctx, error, sizeof(error)) < 0)
			return -1;
		if (strncmp(error, "NOSCRIPT", 8) == 0)
			conn->sweep_loaded = false;
	}
	return 0;
}

redisReply *
ms_store_get_reply(struct ms_store *store, redisContext *ctx)
{
	void *reply = NULL;

	if (ms_store_prepare_read(store, ctx) < 0 || redisGetReply(ctx, &reply) != REDIS_OK)
		return NULL;
	return reply;
}

int
ms_store_append_strs(struct ms_store *store, redisContext *ctx, ...)
{
	va_list args;
	size_t argc = 0;
	const char *arg;

	va_start(args, ctx);
	while (va_arg(args, const char *) != NULL)
		argc++;
	va_end(args);
	ms_resp_command(&store->resp, argc);
	va_start(args, ctx);
	while ((arg = va_arg(args, const char *)) != NULL)
		ms_resp_arg_str(&store->resp, arg);
	va_end(args);
	return ms_store_append_resp(store, ctx);
}

int
ms_store_append_resp(struct ms_store *store, redisContext *ctx)
{
	if (ms_resp_failed(&store->resp))
		return -1;
	return redisAppendFormattedCommand(ctx, store->resp.data, store->resp.len) == REDIS_OK ? 0
	                                                                                       : -1;
}

/* "{g}" for the shared statistics, "{u:USER}" per user: Redis Cluster puts
 * all keys with the same tag on one slot. Braces and bytes that would make
 * the key unreadable are escaped as %XX. */
static int
key_tag(const char *user, char *buf, size_t size)
{
	size_t pos = 0;
	const unsigned char *p;

	if (user == NULL) {
		snprintf(buf, size, "{g}");
		return 0;
	}
	pos = (size_t)snprintf(buf, size, "{u:");
	for (p = (const unsigned char *)user; *p != '\0'; p++) {
		if (pos + 4 >= size)
			return -1;
		if (*p <= ' ' || *p == '{' || *p == '}' || *p == '%' || *p >= 0x7f)
			pos += (size_t)snprintf(buf + pos, size - pos, "%%%02X", *p);
		else
			buf[pos++] = (char)*p;
	}
	if (pos + 2 > size)
		return -1;
	buf[pos++] = '}';
	buf[pos] = '\0';
	return 0;
}

int
ms_store_make_keys(const struct ms_store *store, const char *user, struct ms_store_keys *keys,
                   char *err, size_t errlen)
{
	char tag[400];
	int n;

	if (key_tag(user, tag, sizeof(tag)) < 0)
		return ms_error(err, errlen, "user name too long");
	n = snprintf(keys->meta, sizeof(keys->meta), "%s%s:m", store->prefix, tag);
	snprintf(keys->digests, sizeof(keys->digests), "%s%s:d", store->prefix, tag);
	snprintf(keys->table, sizeof(keys->table), "%s%s:t", store->prefix, tag);
	if (n < 0 || (size_t)n + 8 >= sizeof(keys->meta))
		return ms_error(err, errlen, "redis_prefix too long");
	return 0;
}

unsigned int
ms_store_token_slot(const struct ms_store *store, uint64_t hash)
{
	return (unsigned int)(hash >> (64 - store->table_bits));
}

uint64_t
ms_store_reply_uint(const redisReply *reply)
{
	if (reply->type == REDIS_REPLY_STRING)
		return strtoull(reply->str, NULL, 10);
	if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
		return (uint64_t)reply->integer;
	return 0;
}

bool
ms_store_is_array(const redisReply *reply, size_t elements)
{
	return reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == elements;
}

/* The meta hash and one BITFIELD_RO GET per token ("#N": slot N of 40
 * bits), all in one pipeline: one round trip. */
static int
append_fetch(struct ms_store *store, redisContext *ctx, const struct ms_store_keys *keys,
             const uint64_t *hashes, size_t count)
{
	struct ms_resp_fixed get;
	size_t i, end;

	if (ms_store_append_strs(store, ctx, "HMGET", keys->meta, "spam", "ham", "tokens", "bits",
	                         NULL) < 0)
		return -1;
	ms_resp_fixed_init(&get);
	ms_resp_fixed_add(&get, "GET");
	ms_resp_fixed_add(&get, "u40");
	for (i = 0; i < count; i = end) {
		end = count - i > MS_STORE_FETCH_CHUNK ? i + MS_STORE_FETCH_CHUNK : count;
		ms_resp_command(&store->resp, 2 + 3 * (end - i));
		ms_resp_arg(&store->resp, "BITFIELD_RO", 11);
		ms_resp_arg_str(&store->resp, keys->table);
		for (; i < end; i++) {
			ms_resp_arg_fixed(&store->resp, &get);
			ms_resp_arg_uint(&store->resp, '#', ms_store_token_slot(store, hashes[i]));
		}
		if (ms_store_append_resp(store, ctx) < 0 ||
		    (i < count && ms_store_flush_output(ctx) < 0))
			return -1;
	}
	return 0;
}

static int
read_totals(struct ms_store *store, redisContext *ctx, struct ms_store_totals *totals, char *err,
            size_t errlen)
{
	redisReply *reply = ms_store_get_reply(store, ctx);
	uint64_t bits;

	if (!ms_store_is_array(reply, 4))
		return ms_store_reply_failed(store, ctx, reply, err, errlen);
	totals->learned_spam = ms_store_reply_uint(reply->element[0]);
	totals->learned_ham = ms_store_reply_uint(reply->element[1]);
	totals->tokens = ms_store_reply_uint(reply->element[2]);
	bits = ms_store_reply_uint(reply->element[3]);
	freeReplyObject(reply);
	if (bits != 0 && bits != store->table_bits) {
		/* the pipeline's other replies are still coming: resync by reconnecting */
		ms_store_conn_drop(ms_store_conn_of(store, ctx));
		return ms_error(err, errlen,
		                "token table has 2^%llu slots, not 2^%u: "
		                "token_table_bits changed since learning",
		                (unsigned long long)bits, store->table_bits);
	}
	return 0;
}

struct fetch_sink {
	struct ms_reply_sink sink;
	struct ms_token_counts *counts;
	size_t count;
};

/* one GET's answer: the slot's 40 bits, straight into counts (ms_store_read_uints
 * calls it directly, the general reader through fetch_slot) */
static void
fetch_put(void *context, size_t idx, size_t sub, uint64_t value)
{
	struct ms_token_counts *counts = context;

	(void)sub; /* not nested: always MS_STORE_REPLY_INT */

	counts[idx].spam = MS_STORE_SLOT_SPAM(value);
	counts[idx].ham = MS_STORE_SLOT_HAM(value);
}

static void
fetch_slot(struct ms_reply_sink *sink, const redisReadTask *task, long long value)
{
	struct fetch_sink *f = (struct fetch_sink *)sink;

	if (task->parent == NULL || task->parent->parent != NULL || task->idx < 0 ||
	    (size_t)task->idx >= f->count) {
		sink->unexpected = true;
		return;
	}
	fetch_put(f->counts, (size_t)task->idx, MS_STORE_REPLY_INT,
	          value > 0 ? (uint64_t)value : 0);
}

int
ms_store_sink_failed(struct ms_store *store, redisContext *ctx, const struct ms_reply_sink *sink,
                     char *err, size_t errlen)
{
	struct ms_redis_conn *conn = ms_store_conn_of(store, ctx);

	if (sink->error[0] != '\0')
		ms_error(err, errlen, "redis %s: %s", conn->address, sink->error);
	else
		ms_error(err, errlen, "redis %s: unexpected reply", conn->address);
	ms_store_conn_drop(conn);
	return -1;
}

static int
read_fetch(struct ms_store *store, redisContext *ctx, size_t count, struct ms_token_counts *counts,
           struct ms_store_totals *totals, char *err, size_t errlen)
{
	struct fetch_sink f = {.sink.integer = fetch_slot};
	size_t i, n;
	int ret;

	if (read_totals(store, ctx, totals, err, errlen) < 0)
		return -1;
	for (i = 0; i < count; i += n) {
		n = count - i < MS_STORE_FETCH_CHUNK ? count - i : MS_STORE_FETCH_CHUNK;
		ret = ms_store_read_uints(store, ctx, n, false, fetch_put, counts + i, err, errlen);
		if (ret < 0)
			return -1;
		if (ret > 0)
			continue;
		f.counts = counts + i;
		f.count = n;
		if (ms_store_read_sink(store, ctx, &f.sink, err, errlen) < 0)
			return -1;
		if (f.sink.root_type != REDIS_REPLY_ARRAY || f.sink.root_elements != n ||
		    f.sink.unexpected || f.sink.error[0] != '\0')
			return ms_store_sink_failed(store, ctx, &f.sink, err, errlen);
	}
	return 0;
}

int
ms_store_fetch_send(struct ms_store *store, const char *user, const uint64_t *hashes, size_t count,
                    unsigned long *ticket_r, char *err, size_t errlen)
{
	struct ms_store_keys keys;
	redisContext *ctx;

	if (ms_store_make_keys(store, user, &keys, err, errlen) < 0)
		return -1;
	if ((ctx = ms_store_conn_get(store, true, err, errlen)) == NULL)
		return -1;
	if (append_fetch(store, ctx, &keys, hashes, count) < 0 || ms_store_flush_output(ctx) < 0)
		return ms_store_reply_failed(store, ctx, NULL, err, errlen);
	*ticket_r = ms_store_conn_of(store, ctx)->generation;
	return 0;
}

int
ms_store_fetch_receive(struct ms_store *store, unsigned long ticket, size_t count,
                       struct ms_token_counts *counts, struct ms_store_totals *totals, char *err,
                       size_t errlen)
{
	struct ms_redis_conn *conn = store->read.address != NULL ? &store->read : &store->write;

	if (conn->ctx == NULL || conn->generation != ticket)
		return ms_error(err, errlen, "redis %s: connection lost before the reply",
		                conn->address);
	return read_fetch(store, conn->ctx, count, counts, totals, err, errlen);
}

int
ms_store_fetch(struct ms_store *store, const char *user, const uint64_t *hashes, size_t count,
               struct ms_token_counts *counts, struct ms_store_totals *totals, char *err,
               size_t errlen)
{
	unsigned long ticket;

	if (ms_store_fetch_send(store, user, hashes, count, &ticket, err, errlen) < 0)
		return -1;
	return ms_store_fetch_receive(store, ticket, count, counts, totals, err, errlen);
}

/* Redis names a script by its SHA-1 and returns it from SCRIPT LOAD, so
 * mailsift never hashes the script itself: the delivery path then needs no
 * libcrypto, which costs ~1.5 MB of resident memory just by being loaded. */
int
ms_store_note_sweep(struct ms_store *store, struct ms_redis_conn *conn, const redisReply *reply)
{
	if (reply == NULL || reply->type != REDIS_REPLY_STRING || reply->len != 40)
		return -1;
	memcpy(store->sweep_sha, reply->str, 40);
	store->sweep_sha[40] = '\0';
	conn->sweep_loaded = true;
	return 0;
}

/* Returns 0, or -1 with *reply_r the unexpected reply (or NULL). */
static int
load_sweep(struct ms_store *store, redisContext *ctx, redisReply **reply_r)
{
	redisReply *reply;

	*reply_r = NULL;
	if (redisAppendCommand(ctx, "SCRIPT LOAD %s", MS_STORE_SWEEP_LUA) != REDIS_OK ||
	    (reply = ms_store_get_reply(store, ctx)) == NULL)
		return -1;
	if (ms_store_note_sweep(store, ms_store_conn_of(store, ctx), reply) < 0) {
		*reply_r = reply;
		return -1;
	}
	freeReplyObject(reply);
	return 0;
}

/* EVALSHA of the sweep (loaded first on a new connection), and EVAL once
 * when Redis forgot it since (restart, SCRIPT FLUSH). */
static redisReply *
run_sweep(struct ms_store *store, redisContext *ctx, int argc, const char **argv, size_t *argvlen)
{
	redisReply *reply;

	if (!ms_store_conn_of(store, ctx)->sweep_loaded && load_sweep(store, ctx, &reply) < 0)
		return reply;
	argv[0] = "EVALSHA";
	argvlen[0] = 7;
	argv[1] = store->sweep_sha;
	argvlen[1] = 40;
	if (redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK ||
	    (reply = ms_store_get_reply(store, ctx)) == NULL)
		return NULL;
	if (reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "NOSCRIPT", 8) != 0)
		return reply;
	freeReplyObject(reply);
	argv[0] = "EVAL";
	argvlen[0] = 4;
	argv[1] = MS_STORE_SWEEP_LUA;
	argvlen[1] = strlen(MS_STORE_SWEEP_LUA);
	if (redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK)
		return NULL;
	return ms_store_get_reply(store, ctx);
}

int
ms_store_expire(struct ms_store *store, const char *user, unsigned int nslots,
                unsigned long long *removed_r, char *err, size_t errlen)
{
	struct ms_store_keys keys;
	const char *argv[7];
	size_t argvlen[7], i;
	char bits[16], count[16];
	redisContext *ctx;
	redisReply *reply;

	if (ms_store_make_keys(store, user, &keys, err, errlen) < 0)
		return -1;
	if ((ctx = ms_store_conn_get(store, false, err, errlen)) == NULL)
		return -1;
	snprintf(bits, sizeof(bits), "%u", store->table_bits);
	snprintf(count, sizeof(count), "%u", nslots);
	argv[2] = "2";
	argv[3] = keys.meta;
	argv[4] = keys.table;
	argv[5] = bits;
	argv[6] = count;
	for (i = 2; i < 7; i++)
		argvlen[i] = strlen(argv[i]);
	reply = run_sweep(store, ctx, 7, argv, argvlen);
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER || reply->integer < 0)
		return ms_store_reply_failed(store, ctx, reply, err, errlen);
	*removed_r = (unsigned long long)reply->integer;
	freeReplyObject(reply);
	return 0;
}

static uint64_t
info_field(const char *info, const char *name)
{
	const char *p = strstr(info, name);

	return p != NULL ? strtoull(p + strlen(name), NULL, 10) : 0;
}

int
ms_store_stats(struct ms_store *store, const char *user, struct ms_store_totals *totals,
               unsigned long long *memory_r, char *err, size_t errlen)
{
	struct ms_store_keys keys;
	redisContext *ctx;
	redisReply *reply;

	if (ms_store_make_keys(store, user, &keys, err, errlen) < 0)
		return -1;
	if ((ctx = ms_store_conn_get(store, true, err, errlen)) == NULL)
		return -1;
	if (redisAppendCommand(ctx, "HMGET %s spam ham tokens bits", keys.meta) != REDIS_OK ||
	    redisAppendCommand(ctx, "INFO memory") != REDIS_OK)
		return ms_store_reply_failed(store, ctx, NULL, err, errlen);
	if (read_totals(store, ctx, totals, err, errlen) < 0)
		return -1;
	reply = ms_store_get_reply(store, ctx);
	if (reply == NULL || reply->type != REDIS_REPLY_STRING)
		return ms_store_reply_failed(store, ctx, reply, err, errlen);
	*memory_r = info_field(reply->str, "\nused_memory:");
	freeReplyObject(reply);
	return 0;
}
