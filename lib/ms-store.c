#include "ms-store.h"
#include "ms-store-scripts.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* Buckets visited for expiry on every learn: a full cycle over the 65,536
 * buckets takes 16,384 learns, so a token seen once is forgotten only after
 * that many further learns passed without it. */
#define MS_STORE_SWEEP_PER_LEARN 4
#define MS_STORE_VALUE_HAM_SHIFT 24

#define MS_STORE_MAX_KEY 600

struct ms_redis_conn {
	char *address;
	redisContext *ctx;
};

struct ms_store {
	struct ms_redis_conn write;
	struct ms_redis_conn read; /* address NULL: read from write */
	char *prefix;
	struct timeval timeout;
	char learn_sha[41];
	char expire_sha[41];
};

static int __attribute__((format(printf, 3, 4)))
store_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(err, errlen, fmt, args);
	va_end(args);
	return -1;
}

static void
script_sha1(const char *script, char hex[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	if (EVP_Digest(script, strlen(script), md, &len, EVP_sha1(), NULL) != 1 || len != 20) {
		/* EVALSHA then fails with NOSCRIPT and EVAL takes over */
		memset(hex, '0', 40);
		len = 0;
	}
	for (i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[40] = '\0';
}

struct ms_store *
ms_store_create(const char *address, const char *read_address, const char *prefix,
                unsigned int timeout_msecs)
{
	struct ms_store *store = calloc(1, sizeof(*store));

	if (store == NULL)
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
	store->timeout.tv_sec = timeout_msecs / 1000;
	store->timeout.tv_usec = (timeout_msecs % 1000) * 1000;
	script_sha1(MS_STORE_LEARN_LUA, store->learn_sha);
	script_sha1(MS_STORE_EXPIRE_LUA, store->expire_sha);
	return store;
}

static void
conn_drop(struct ms_redis_conn *conn)
{
	if (conn->ctx != NULL)
		redisFree(conn->ctx);
	conn->ctx = NULL;
}

void
ms_store_destroy(struct ms_store **storep)
{
	struct ms_store *store = *storep;

	if (store == NULL)
		return;
	conn_drop(&store->write);
	conn_drop(&store->read);
	free(store->write.address);
	free(store->read.address);
	free(store->prefix);
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
static redisContext *
conn_get(struct ms_store *store, bool for_read, char *err, size_t errlen)
{
	struct ms_redis_conn *conn =
	        for_read && store->read.address != NULL ? &store->read : &store->write;

	if (conn->ctx != NULL)
		return conn->ctx;
	conn->ctx = connect_address(conn->address, &store->timeout);
	if (conn->ctx == NULL) {
		store_error(err, errlen, "redis %s: bad address or out of memory", conn->address);
		return NULL;
	}
	if (conn->ctx->err != 0 || redisSetTimeout(conn->ctx, store->timeout) != REDIS_OK) {
		store_error(err, errlen, "redis %s: %s", conn->address,
		            conn->ctx->err != 0 ? conn->ctx->errstr : strerror(errno));
		conn_drop(conn);
		return NULL;
	}
	return conn->ctx;
}

/* After an I/O or protocol error the stream may hold half a reply: start
 * over with a new connection next time. */
static int
reply_failed(struct ms_store *store, redisContext *ctx, redisReply *reply, char *err, size_t errlen)
{
	struct ms_redis_conn *conn = ctx == store->read.ctx ? &store->read : &store->write;

	if (reply == NULL)
		store_error(err, errlen, "redis %s: %s", conn->address,
		            ctx->err != 0 ? ctx->errstr : "no reply");
	else if (reply->type == REDIS_REPLY_ERROR)
		store_error(err, errlen, "redis %s: %.*s", conn->address, (int)reply->len,
		            reply->str);
	else
		store_error(err, errlen, "redis %s: unexpected reply type %d", conn->address,
		            reply->type);
	if (reply != NULL)
		freeReplyObject(reply);
	conn_drop(conn);
	return -1;
}

/* Write the pipeline out. A Redis that died mid-write must not kill the
 * process with SIGPIPE, and the library cannot change the process's
 * handler: block it for the write and consume what the write raised. */
static int
flush_output(redisContext *ctx)
{
	static const struct timespec no_wait = {0, 0};
	sigset_t pipe_set, old_set, pending;
	bool was_pending;
	int done = 0, ret = 0;

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

static redisReply *
get_reply(redisContext *ctx)
{
	void *reply = NULL;

	if (flush_output(ctx) < 0 || redisGetReply(ctx, &reply) != REDIS_OK)
		return NULL;
	return reply;
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

struct ms_store_keys {
	char meta[MS_STORE_MAX_KEY];
	char digests[MS_STORE_MAX_KEY];
	char tokens[MS_STORE_MAX_KEY]; /* prefix; the bucket's 4 hex digits follow */
};

static int
make_keys(const struct ms_store *store, const char *user, struct ms_store_keys *keys, char *err,
          size_t errlen)
{
	char tag[400];
	int n;

	if (key_tag(user, tag, sizeof(tag)) < 0)
		return store_error(err, errlen, "user name too long");
	n = snprintf(keys->meta, sizeof(keys->meta), "%s%s:m", store->prefix, tag);
	snprintf(keys->digests, sizeof(keys->digests), "%s%s:d", store->prefix, tag);
	snprintf(keys->tokens, sizeof(keys->tokens), "%s%s:t:", store->prefix, tag);
	if (n < 0 || (size_t)n + 8 >= sizeof(keys->meta))
		return store_error(err, errlen, "redis_prefix too long");
	return 0;
}

static unsigned int
token_bucket(uint64_t hash)
{
	return (unsigned int)(hash >> (64 - MS_STORE_BUCKET_BITS));
}

static void
token_field(uint64_t hash, unsigned char field[4])
{
	uint32_t bits = (uint32_t)(hash >> (64 - MS_STORE_BUCKET_BITS - 32));

	field[0] = (unsigned char)(bits >> 24);
	field[1] = (unsigned char)(bits >> 16);
	field[2] = (unsigned char)(bits >> 8);
	field[3] = (unsigned char)bits;
}

static uint64_t
reply_uint(const redisReply *reply)
{
	if (reply->type == REDIS_REPLY_STRING)
		return strtoull(reply->str, NULL, 10);
	if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
		return (uint64_t)reply->integer;
	return 0;
}

static void
decode_counts(const redisReply *reply, struct ms_token_counts *counts)
{
	uint64_t v = reply_uint(reply);
	uint64_t ham = v >> MS_STORE_VALUE_HAM_SHIFT;

	counts->spam = (uint32_t)((v & ((1u << MS_STORE_VALUE_HAM_SHIFT) - 1)) >> 1);
	counts->ham = ham > UINT32_MAX ? UINT32_MAX : (uint32_t)ham;
}

static bool
is_array(const redisReply *reply, size_t elements)
{
	return reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == elements;
}

/* One HMGET per bucket that the message's tokens fall into, all in one
 * pipeline. Sorted hashes come grouped by bucket already. */
static int
append_fetch(redisContext *ctx, const struct ms_store_keys *keys, const uint64_t *hashes,
             size_t count, const char **argv, size_t *argvlen, unsigned char *fields,
             size_t *groups_r)
{
	char key[MS_STORE_MAX_KEY + 8];
	size_t i = 0, j, n, groups = 0;

	if (redisAppendCommand(ctx, "HMGET %s spam ham tokens", keys->meta) != REDIS_OK)
		return -1;
	while (i < count) {
		snprintf(key, sizeof(key), "%s%04x", keys->tokens, token_bucket(hashes[i]));
		argv[0] = "HMGET";
		argvlen[0] = 5;
		argv[1] = key;
		argvlen[1] = strlen(key);
		for (j = i, n = 2; j < count && token_bucket(hashes[j]) == token_bucket(hashes[i]);
		     j++, n++) {
			token_field(hashes[j], fields + 4 * j);
			argv[n] = (const char *)fields + 4 * j;
			argvlen[n] = 4;
		}
		if (redisAppendCommandArgv(ctx, (int)n, argv, argvlen) != REDIS_OK)
			return -1;
		groups++;
		i = j;
	}
	*groups_r = groups;
	return 0;
}

static int
read_fetch(struct ms_store *store, redisContext *ctx, const uint64_t *hashes, size_t count,
           struct ms_token_counts *counts, struct ms_store_totals *totals, char *err, size_t errlen)
{
	redisReply *reply = get_reply(ctx);
	size_t i = 0, j, n;

	if (!is_array(reply, 3))
		return reply_failed(store, ctx, reply, err, errlen);
	totals->learned_spam = reply_uint(reply->element[0]);
	totals->learned_ham = reply_uint(reply->element[1]);
	totals->tokens = reply_uint(reply->element[2]);
	freeReplyObject(reply);
	while (i < count) {
		for (j = i; j < count && token_bucket(hashes[j]) == token_bucket(hashes[i]); j++)
			;
		n = j - i;
		reply = get_reply(ctx);
		if (!is_array(reply, n))
			return reply_failed(store, ctx, reply, err, errlen);
		for (j = 0; j < n; j++)
			decode_counts(reply->element[j], &counts[i + j]);
		freeReplyObject(reply);
		i += n;
	}
	return 0;
}

int
ms_store_fetch(struct ms_store *store, const char *user, const uint64_t *hashes, size_t count,
               struct ms_token_counts *counts, struct ms_store_totals *totals, char *err,
               size_t errlen)
{
	struct ms_store_keys keys;
	redisContext *ctx;
	const char **argv = NULL;
	size_t *argvlen = NULL, groups;
	unsigned char *fields = NULL;
	int ret = -1;

	if (make_keys(store, user, &keys, err, errlen) < 0)
		return -1;
	if ((ctx = conn_get(store, true, err, errlen)) == NULL)
		return -1;
	argv = malloc((count + 2) * sizeof(*argv));
	argvlen = malloc((count + 2) * sizeof(*argvlen));
	fields = malloc(4 * count + 1);
	if (argv == NULL || argvlen == NULL || fields == NULL)
		store_error(err, errlen, "out of memory");
	else if (append_fetch(ctx, &keys, hashes, count, argv, argvlen, fields, &groups) < 0)
		reply_failed(store, ctx, NULL, err, errlen);
	else
		ret = read_fetch(store, ctx, hashes, count, counts, totals, err, errlen);
	free(argv);
	free(argvlen);
	free(fields);
	return ret;
}

/* EVALSHA, and EVAL once when Redis does not know the script yet (first
 * use, restart, SCRIPT FLUSH). */
static redisReply *
run_script(redisContext *ctx, const char *sha, const char *script, int argc, const char **argv,
           size_t *argvlen)
{
	redisReply *reply;

	argv[0] = "EVALSHA";
	argvlen[0] = 7;
	argv[1] = sha;
	argvlen[1] = 40;
	if (redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK ||
	    (reply = get_reply(ctx)) == NULL)
		return NULL;
	if (reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "NOSCRIPT", 8) != 0)
		return reply;
	freeReplyObject(reply);
	argv[0] = "EVAL";
	argvlen[0] = 4;
	argv[1] = script;
	argvlen[1] = strlen(script);
	if (redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK)
		return NULL;
	return get_reply(ctx);
}

static void
pack_tokens(const uint64_t *hashes, size_t count, unsigned char *packed)
{
	char hex[8];
	size_t i;

	for (i = 0; i < count; i++) {
		snprintf(hex, sizeof(hex), "%04x", token_bucket(hashes[i]));
		memcpy(packed + 8 * i, hex, 4);
		token_field(hashes[i], packed + 8 * i + 4);
	}
}

int
ms_store_learn(struct ms_store *store, const char *user, enum ms_class cls,
               const unsigned char digest[MS_DIGEST_SIZE], const uint64_t *hashes, size_t count,
               enum ms_learn_result *result_r, char *err, size_t errlen)
{
	static const enum ms_learn_result results[] = {MS_LEARN_DONE, MS_LEARN_ALREADY,
	                                               MS_LEARN_MOVED};
	struct ms_store_keys keys;
	const char *argv[10];
	size_t argvlen[10];
	char sweep[16];
	unsigned char *packed;
	redisContext *ctx;
	redisReply *reply;

	if (make_keys(store, user, &keys, err, errlen) < 0)
		return -1;
	if ((ctx = conn_get(store, false, err, errlen)) == NULL)
		return -1;
	if ((packed = malloc(8 * count + 1)) == NULL)
		return store_error(err, errlen, "out of memory");
	pack_tokens(hashes, count, packed);
	snprintf(sweep, sizeof(sweep), "%d", MS_STORE_SWEEP_PER_LEARN);
	argv[2] = "2";
	argv[3] = keys.meta;
	argv[4] = keys.digests;
	argv[5] = keys.tokens;
	argv[6] = cls == MS_CLASS_SPAM ? "S" : "H";
	argv[7] = (const char *)digest;
	argv[8] = (const char *)packed;
	argvlen[2] = 1;
	argvlen[3] = strlen(keys.meta);
	argvlen[4] = strlen(keys.digests);
	argvlen[5] = strlen(keys.tokens);
	argvlen[6] = 1;
	argvlen[7] = MS_DIGEST_SIZE;
	argvlen[8] = 8 * count;
	argv[9] = sweep;
	argvlen[9] = strlen(sweep);
	reply = run_script(ctx, store->learn_sha, MS_STORE_LEARN_LUA, 10, argv, argvlen);
	free(packed);
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER || reply->integer < 0 ||
	    reply->integer > 2)
		return reply_failed(store, ctx, reply, err, errlen);
	*result_r = results[reply->integer];
	freeReplyObject(reply);
	return 0;
}

int
ms_store_expire(struct ms_store *store, const char *user, unsigned int nbuckets,
                unsigned long long *removed_r, char *err, size_t errlen)
{
	struct ms_store_keys keys;
	const char *argv[6];
	size_t argvlen[6];
	char count[16];
	redisContext *ctx;
	redisReply *reply;

	if (make_keys(store, user, &keys, err, errlen) < 0)
		return -1;
	if ((ctx = conn_get(store, false, err, errlen)) == NULL)
		return -1;
	snprintf(count, sizeof(count), "%u", nbuckets);
	argv[2] = "1";
	argv[3] = keys.meta;
	argv[4] = keys.tokens;
	argv[5] = count;
	argvlen[2] = 1;
	argvlen[3] = strlen(keys.meta);
	argvlen[4] = strlen(keys.tokens);
	argvlen[5] = strlen(count);
	reply = run_script(ctx, store->expire_sha, MS_STORE_EXPIRE_LUA, 6, argv, argvlen);
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER || reply->integer < 0)
		return reply_failed(store, ctx, reply, err, errlen);
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

	if (make_keys(store, user, &keys, err, errlen) < 0)
		return -1;
	if ((ctx = conn_get(store, true, err, errlen)) == NULL)
		return -1;
	if (redisAppendCommand(ctx, "HMGET %s spam ham tokens", keys.meta) != REDIS_OK ||
	    redisAppendCommand(ctx, "INFO memory") != REDIS_OK)
		return reply_failed(store, ctx, NULL, err, errlen);
	reply = get_reply(ctx);
	if (!is_array(reply, 3))
		return reply_failed(store, ctx, reply, err, errlen);
	totals->learned_spam = reply_uint(reply->element[0]);
	totals->learned_ham = reply_uint(reply->element[1]);
	totals->tokens = reply_uint(reply->element[2]);
	freeReplyObject(reply);
	reply = get_reply(ctx);
	if (reply == NULL || reply->type != REDIS_REPLY_STRING)
		return reply_failed(store, ctx, reply, err, errlen);
	*memory_r = info_field(reply->str, "\nused_memory:");
	freeReplyObject(reply);
	return 0;
}
