/* Replies read without redisReply objects. A BITFIELD reply holds an
 * integer per token: hiredis would allocate an object for each (and the
 * learn transaction's reply two per token). For one reply the connection's
 * reader gets object functions that hand each integer to a callback and
 * build nothing; every object they return is the sink itself. */
#include "ms-store-private.h"

#include <stdio.h>
#include <string.h>

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
	return sink;
}

static void *
sink_array(const redisReadTask *task, int elements)
{
	struct ms_reply_sink *sink = sink_of(task);
	int d = depth(task);

	if (d == 0) {
		sink->root_type = REDIS_REPLY_ARRAY;
		sink->root_elements = elements > 0 ? (size_t)elements : 0;
	} else if (d > 1)
		sink->unexpected = true;
	return sink;
}

static void *
sink_integer(const redisReadTask *task, long long value)
{
	struct ms_reply_sink *sink = sink_of(task);

	if (task->parent == NULL)
		sink->root_type = REDIS_REPLY_INTEGER;
	sink->integer(sink, task, value);
	return sink;
}

static void *
sink_nil(const redisReadTask *task)
{
	struct ms_reply_sink *sink = sink_of(task);

	if (task->parent == NULL)
		sink->root_type = REDIS_REPLY_NIL;
	else
		sink->unexpected = true;
	return sink;
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
