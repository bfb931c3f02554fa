/* Replies read without redisReply objects. A BITFIELD reply holds an
 * integer per token: hiredis would allocate an object for each (and the
 * learn transaction's reply two per token). For one reply the connection's
 * reader gets object functions that hand each integer to a callback and
 * build nothing; every object they return is sink_object. */
#include "ms-store-private.h"

#include <hiredis/sds.h>
#include <stdio.h>
#include <string.h>

/* hiredis takes a NULL object for out of memory, and 1.x reads the type of
 * each reply it gets as a redisReply's (to pass RESP3 pushes to the push
 * callback): the sink's objects are this, which is no push. */
static redisReply sink_object = {.type = REDIS_REPLY_NIL};

static struct ms_reply_sink *
sink_of(const redisReadTask *task)
{
	return task->privdata;
}

static int
depth(const redisReadTask *task)
{
	int d = 0;

	for (; task->parent != NULL; task = task->parent)
		d++;
	return d;
}

static void *
sink_string(const redisReadTask *task, char *str, size_t len)
{
	struct ms_reply_sink *sink = sink_of(task);
	int d = depth(task);

	if (task->type != REDIS_REPLY_ERROR || d > 1)
		sink->unexpected = true;
	else if (sink->error[0] == '\0') {
		if (d == 0)
			sink->root_type = REDIS_REPLY_ERROR;
		sink->error_at = d == 0 ? -1 : task->idx;
		snprintf(sink->error, sizeof(sink->error), "%.*s", (int)len, str);
	}
	return &sink_object;
}

/* The one place that tells hiredis's versions apart: 1.0 made createArray's
 * element count a size_t (it was an int), and a function of the other type
 * does not fit the pointer. */
#if HIREDIS_MAJOR >= 1
typedef size_t ms_hiredis_elements;
#else
typedef int ms_hiredis_elements;
#endif

static void *
sink_array(const redisReadTask *task, ms_hiredis_elements elements)
{
	struct ms_reply_sink *sink = sink_of(task);
	int d = depth(task);

	if (d == 0) {
		sink->root_type = REDIS_REPLY_ARRAY;
		sink->root_elements = elements > 0 ? (size_t)elements : 0;
	} else if (d > 1)
		sink->unexpected = true;
	return &sink_object;
}

static void *
sink_integer(const redisReadTask *task, long long value)
{
	struct ms_reply_sink *sink = sink_of(task);

	if (task->parent == NULL)
		sink->root_type = REDIS_REPLY_INTEGER;
	sink->integer(sink, task, value);
	return &sink_object;
}

static void *
sink_nil(const redisReadTask *task)
{
	struct ms_reply_sink *sink = sink_of(task);

	if (task->parent == NULL)
		sink->root_type = REDIS_REPLY_NIL;
	else
		sink->unexpected = true;
	return &sink_object;
}

static void
sink_free(void *obj)
{
	(void)obj; /* nothing was allocated */
}

static redisReplyObjectFunctions sink_functions = {
        .createString = sink_string,
        .createArray = sink_array,
        .createInteger = sink_integer,
        .createNil = sink_nil,
        .freeObject = sink_free,
};

int
ms_store_read_sink(struct ms_store *store, redisContext *ctx, struct ms_reply_sink *sink, char *err,
                   size_t errlen)
{
	redisReplyObjectFunctions *saved = ctx->reader->fn;
	void *saved_privdata = ctx->reader->privdata;
	void *reply = NULL;
	int ret;

	sink->root_type = -1;
	sink->root_elements = 0;
	sink->error_at = -1;
	sink->error[0] = '\0';
	sink->unexpected = false;
	if (ms_store_prepare_read(store, ctx) < 0)
		return ms_store_reply_failed(store, ctx, NULL, err, errlen);
	ctx->reader->fn = &sink_functions;
	ctx->reader->privdata = sink;
	ret = redisGetReply(ctx, &reply);
	if (ret != REDIS_OK) {
		/* a half-read reply holds the sink: free the reader with the sink's
		 * functions, so the connection goes before they are put back */
		return ms_store_reply_failed(store, ctx, NULL, err, errlen);
	}
	ctx->reader->fn = saved;
	ctx->reader->privdata = saved_privdata;
	return 0;
}

static void
discard_integer(struct ms_reply_sink *sink, const redisReadTask *task, long long value)
{
	(void)sink;
	(void)task;
	(void)value;
}

int
ms_store_discard_reply(redisContext *ctx, char *error, size_t size)
{
	struct ms_reply_sink sink = {.integer = discard_integer};
	redisReplyObjectFunctions *saved = ctx->reader->fn;
	void *saved_privdata = ctx->reader->privdata;
	void *reply = NULL;

	ctx->reader->fn = &sink_functions;
	ctx->reader->privdata = &sink;
	if (redisGetReply(ctx, &reply) != REDIS_OK) {
		/* a half-read reply refers to the sink: its functions stay, they
		 * free nothing, and the caller drops the connection */
		ctx->reader->privdata = NULL;
		return -1;
	}
	ctx->reader->fn = saved;
	ctx->reader->privdata = saved_privdata;
	snprintf(error, size, "%s", sink.error);
	return 0;
}

/* The commonest replies, a BITFIELD's array of integers and a learn's
 * EXEC (arrays of them), parsed straight from the reader's buffer:
 * hiredis's reader keeps a task and makes a callback for each element, and
 * that was most of the client's time reading a classification's 1,282
 * integers. */

/* The line at p: type, decimal digits, CRLF. Returns 1 with its value and
 * end, 0 if the buffer ends before the line does, -1 if the line is
 * anything else (a sign, an error, a nil, too many digits). */
static int
number_line(char type, const char *p, const char *end, uint64_t *value_r, const char **next_r)
{
	const char *digits, *last;
	uint64_t value = 0;

	if (p == end)
		return 0;
	if (*p != type)
		return -1;
	/* up to 19 digits: no overflow */
	digits = ++p;
	last = end - p > 19 ? p + 19 : end;
	for (; p < last && (unsigned char)(*p - '0') <= 9; p++)
		value = value * 10 + (uint64_t)(*p - '0');
	if (p == end || (p[0] == '\r' && p + 1 == end))
		return 0;
	if (p == digits || p[0] != '\r' || p[1] != '\n')
		return -1;
	*value_r = value;
	*next_r = p + 2;
	return 1;
}

/* How far the parse of a reply got, between reads. */
struct uint_parse {
	size_t count;
	bool nested;
	ms_store_uint_fn *put;
	void *context;
	size_t offset; /* bytes parsed from the reader's cursor on */
	bool header;   /* the reply's "*count" line was read */
	size_t idx;    /* its elements done */
	bool in_sub;   /* element idx is an array, sub of its sub_count done */
	size_t sub, sub_count;
};

/* The next line of the reply at p. Returns as number_line(). */
static int
uint_parse_line(struct uint_parse *u, const char *p, const char *end, const char **next_r)
{
	uint64_t value;
	int ret;

	if (!u->header) {
		if ((ret = number_line('*', p, end, &value, next_r)) == 1) {
			if (value != u->count)
				return -1;
			u->header = true;
		}
	} else if (u->in_sub) {
		if ((ret = number_line(':', p, end, &value, next_r)) == 1) {
			u->put(u->context, u->idx, u->sub++, value);
			if (u->sub == u->sub_count) {
				u->in_sub = false;
				u->idx++;
			}
		}
	} else if (u->nested && p < end && *p == '*') {
		if ((ret = number_line('*', p, end, &value, next_r)) == 1) {
			u->sub = 0;
			u->sub_count = value;
			u->in_sub = value > 0;
			if (value == 0)
				u->idx++;
		}
	} else if ((ret = number_line(':', p, end, &value, next_r)) == 1) {
		u->put(u->context, u->idx++, MS_STORE_REPLY_INT, value);
	}
	return ret;
}

/* The reply's lines from where the parse stands, as far as the buffer
 * goes. Returns as number_line(), 1 when the reply is whole. */
static int
uint_parse_more(struct uint_parse *u, const redisReader *r)
{
	const char *start = r->buf + r->pos, *p = start + u->offset, *end = r->buf + r->len;
	const char *next;
	int ret = 1;

	while (!(u->header && u->idx == u->count) && (ret = uint_parse_line(u, p, end, &next)) == 1)
		p = next;
	u->offset = (size_t)(p - start);
	return ret;
}

int
ms_store_read_uints(struct ms_store *store, redisContext *ctx, size_t count, bool nested,
                    ms_store_uint_fn *put, void *context, char *err, size_t errlen)
{
	struct uint_parse u = {.count = count, .nested = nested, .put = put, .context = context};
	redisReader *r = ctx->reader;
	int ret;

	if (ms_store_prepare_read(store, ctx) < 0)
		return ms_store_reply_failed(store, ctx, NULL, err, errlen);
	/* only at the start of a reply, with nothing of it taken by the
	 * reader yet */
	if (r->err != 0 || r->ridx != -1)
		return 0;
	while ((ret = uint_parse_more(&u, r)) == 0) {
		/* the rest is on its way: read more into the reader's buffer
		 * (offsets stay valid, it only grows until a reply is taken) */
		if (redisBufferRead(ctx) != REDIS_OK)
			return ms_store_reply_failed(store, ctx, NULL, err, errlen);
	}
	if (ret < 0)
		return 0; /* nothing taken: the general reader reads it */
	r->pos += u.offset;
	/* what hiredis's reader does after a reply: drop what was read once
	 * it is 1 KB, so the buffer does not grow from reply to reply */
	if (r->pos >= 1024) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
		sdssetlen(r->buf, r->len);
		r->buf[r->len] = '\0';
	}
	return 1;
}
