/* Learning: a WATCH/MULTI/EXEC transaction, so that a message's digest and
 * its token counts change together or not at all. The token updates are
 * plain BITFIELD commands: measured, Lua building the same arguments cost
 * five times the update itself (doc/redis-schema.md). */
#include "ms-store-private.h"
#include "ms-util.h"
#include "ms-store-scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tokens per BITFIELD command: Redis refuses more than 1M arguments. */
#define LEARN_CHUNK 4096
/* EXEC fails when another learner changed the digests meanwhile: retry. */
#define LEARN_TRIES 5

struct learn {
	struct ms_store *store;
	redisContext *ctx;
	struct ms_store_keys keys;
	const unsigned char *digest;
	const uint64_t *hashes;
	size_t count;
	char cls;     /* 'S' or 'H' */
	char old_cls; /* as learned before, or 0 */
	long long new_tokens;
	/* slots this learn made hold one sighting: they get the recent mark */
	unsigned int *fresh;
	size_t nfresh;
	/* called once while Redis runs the first transaction, then NULL */
	ms_store_overlap_fn *overlap;
	void *overlap_context;
	/* what overlap returned: the next message's digest, or NULL */
	const unsigned char *next_digest;
};

static const char *
class_counter(char cls)
{
	return cls == 'S' ? "spam" : "ham";
}

static const char *
class_delta(char cls, bool unlearn)
{
	if (cls == 'S')
		return unlearn ? "-2" : "2";     /* MS_STORE_SPAM_ONE */
	return unlearn ? "-1048576" : "1048576"; /* MS_STORE_HAM_ONE */
}

static int
learn_failed(struct learn *l, redisReply *reply, char *err, size_t errlen)
{
	return ms_store_reply_failed(l->store, l->ctx, reply, err, errlen);
}

/* HGET or HSET (to value) of a message's digest in the digests hash */
static int
append_digest(struct learn *l, const char *command, const unsigned char *digest, const char *value)
{
	struct ms_resp *resp = &l->store->resp;

	ms_resp_command(resp, value != NULL ? 4 : 3);
	ms_resp_arg_str(resp, command);
	ms_resp_arg_str(resp, l->keys.digests);
	ms_resp_arg(resp, digest, MS_DIGEST_SIZE);
	if (value != NULL)
		ms_resp_arg_str(resp, value);
	return ms_store_append_resp(l->store, l->ctx);
}

/* The lookup's commands for digest: the sweep script loaded if load, the
 * digests watched, how digest and the table were learned before. */
static int
append_lookup(struct learn *l, const unsigned char *digest, bool load)
{
	if ((load &&
	     redisAppendCommand(l->ctx, "SCRIPT LOAD %s", MS_STORE_SWEEP_LUA) != REDIS_OK) ||
	    ms_store_append_strs(l->store, l->ctx, "WATCH", l->keys.digests, NULL) < 0 ||
	    append_digest(l, "HGET", digest, NULL) < 0 ||
	    ms_store_append_strs(l->store, l->ctx, "HGET", l->keys.meta, "bits", NULL) < 0)
		return -1;
	return 0;
}

/* Whether the previous learn already sent this one's lookup (ms_filter_learn_many):
 * then only its replies are read. A lookup sent for another message is skipped. */
static bool
lookup_sent_ahead(struct learn *l, bool *load_r)
{
	struct ms_store_ahead *ahead = &l->store->ahead;
	struct ms_redis_conn *conn = ms_store_conn_of(l->store, l->ctx);
	bool usable;

	if (!ahead->sent)
		return false;
	ahead->sent = false;
	if (ahead->generation != conn->generation)
		return false; /* sent on a connection since dropped */
	usable = memcmp(ahead->digest, l->digest, MS_DIGEST_SIZE) == 0 &&
	         strcmp(ahead->digests_key, l->keys.digests) == 0;
	if (!usable)
		conn->pending += ahead->load ? 4 : 3;
	*load_r = ahead->load;
	return usable;
}

/* Round trip 1: load the sweep script on a new connection (or after a
 * NOSCRIPT among the replies skipped first), WATCH the digests, and read how
 * this message and the table were learned before. */
static int
learn_lookup(struct learn *l, char *err, size_t errlen)
{
	struct ms_redis_conn *conn = ms_store_conn_of(l->store, l->ctx);
	redisReply *reply;
	uint64_t bits;
	bool load;

	if (!lookup_sent_ahead(l, &load)) {
		if (ms_store_prepare_read(l->store, l->ctx) < 0)
			return learn_failed(l, NULL, err, errlen);
		load = !conn->sweep_loaded;
		if (append_lookup(l, l->digest, load) < 0)
			return learn_failed(l, NULL, err, errlen);
	}
	if (load) {
		reply = ms_store_get_reply(l->store, l->ctx);
		if (ms_store_note_sweep(l->store, conn, reply) < 0)
			return learn_failed(l, reply, err, errlen);
		freeReplyObject(reply);
	}
	reply = ms_store_get_reply(l->store, l->ctx);
	if (reply == NULL || reply->type != REDIS_REPLY_STATUS)
		return learn_failed(l, reply, err, errlen);
	freeReplyObject(reply);
	reply = ms_store_get_reply(l->store, l->ctx);
	if (reply == NULL || (reply->type != REDIS_REPLY_NIL && reply->type != REDIS_REPLY_STRING))
		return learn_failed(l, reply, err, errlen);
	l->old_cls = reply->type == REDIS_REPLY_STRING && reply->len == 1 ? reply->str[0] : 0;
	freeReplyObject(reply);
	reply = ms_store_get_reply(l->store, l->ctx);
	if (reply == NULL || (reply->type != REDIS_REPLY_NIL && reply->type != REDIS_REPLY_STRING))
		return learn_failed(l, reply, err, errlen);
	bits = ms_store_reply_uint(reply);
	freeReplyObject(reply);
	if (bits != 0 && bits != l->store->table_bits) {
		ms_store_conn_drop(conn); /* drops the WATCH too */
		return ms_error(err, errlen,
		                "token table has 2^%llu slots, not 2^%u: "
		                "token_table_bits changed since learning",
		                (unsigned long long)bits, l->store->table_bits);
	}
	return 0;
}

/* One BITFIELD per chunk of tokens: add delta to each token's slot. */
static int
append_updates(struct learn *l, char cls, bool unlearn)
{
	struct ms_resp *resp = &l->store->resp;
	struct ms_resp_fixed incrby, delta;
	size_t i, end;

	ms_resp_fixed_init(&incrby);
	ms_resp_fixed_add(&incrby, "INCRBY");
	ms_resp_fixed_add(&incrby, "u40");
	ms_resp_fixed_init(&delta);
	ms_resp_fixed_add(&delta, class_delta(cls, unlearn));
	for (i = 0; i < l->count; i = end) {
		end = l->count - i > LEARN_CHUNK ? i + LEARN_CHUNK : l->count;
		ms_resp_command(resp, 4 + 4 * (end - i));
		ms_resp_arg(resp, "BITFIELD", 8);
		ms_resp_arg_str(resp, l->keys.table);
		ms_resp_arg(resp, "OVERFLOW", 8);
		ms_resp_arg(resp, "SAT", 3);
		for (; i < end; i++) {
			ms_resp_arg_fixed(resp, &incrby);
			ms_resp_arg_uint(resp, '#', ms_store_token_slot(l->store, l->hashes[i]));
			ms_resp_arg_fixed(resp, &delta);
		}
		if (ms_store_append_resp(l->store, l->ctx) < 0)
			return -1;
	}
	return 0;
}

static size_t
chunks(size_t count)
{
	return (count + LEARN_CHUNK - 1) / LEARN_CHUNK;
}

/* Round trip 2: the transaction. Returns the number of queued commands. */
static int
append_transaction(struct learn *l, size_t *queued_r)
{
	char bits[16];
	size_t queued = 0;

	snprintf(bits, sizeof(bits), "%u", l->store->table_bits);
	if (ms_store_append_strs(l->store, l->ctx, "MULTI", NULL) < 0)
		return -1;
	if (l->old_cls != 0) {
		if (append_updates(l, l->old_cls, true) < 0 ||
		    ms_store_append_strs(l->store, l->ctx, "HINCRBY", l->keys.meta,
		                         class_counter(l->old_cls), "-1", NULL) < 0)
			return -1;
		queued += chunks(l->count) + 1;
	}
	if (append_updates(l, l->cls, false) < 0 ||
	    ms_store_append_strs(l->store, l->ctx, "HINCRBY", l->keys.meta, class_counter(l->cls),
	                         "1", NULL) < 0 ||
	    append_digest(l, "HSET", l->digest, l->cls == 'S' ? "S" : "H") < 0 ||
	    ms_store_append_strs(l->store, l->ctx, "HSETNX", l->keys.meta, "bits", bits, NULL) <
	            0 ||
	    ms_store_append_strs(l->store, l->ctx, "EXEC", NULL) < 0)
		return -1;
	*queued_r = queued + chunks(l->count) + 3;
	return 0;
}

/* The transaction's reply, counted as it is read: tokens whose slot went
 * from empty to used (noted in fresh), or back. EXEC's array holds, in
 * order, the unlearn's BITFIELD replies and its HINCRBY (if moving), the
 * learn's BITFIELD replies (INCRBY's new value per token), then three
 * integers. */
struct exec_sink {
	struct ms_reply_sink sink;
	struct learn *l;
	size_t unlearn_chunks; /* EXEC elements of the unlearn's updates */
	size_t learn_first, learn_end;
};

/* One integer of EXEC's reply: element idx, its sub-th value
 * (MS_STORE_REPLY_INT: the element is the integer). ms_store_read_uints
 * calls it directly, the general reader through exec_integer. */
static void
exec_put(void *context, size_t idx, size_t sub, uint64_t value)
{
	struct exec_sink *e = context;
	long long one =
	        e->l->cls == 'S' ? (long long)MS_STORE_SPAM_ONE : (long long)MS_STORE_HAM_ONE;
	size_t k;

	if (sub == MS_STORE_REPLY_INT)
		return; /* EXEC's own integers: counters, digest, sweep */
	if (idx < e->unlearn_chunks) {
		if (value <= 1)
			e->l->new_tokens--;
	} else if (idx >= e->learn_first && idx < e->learn_end) {
		/* counts now exactly one: empty before (the mark aside) */
		k = (idx - e->learn_first) * LEARN_CHUNK + sub;
		if ((long long)(value & ~1ULL) == one && k < e->l->count) {
			e->l->new_tokens++;
			e->l->fresh[e->l->nfresh++] =
			        ms_store_token_slot(e->l->store, e->l->hashes[k]);
		}
	}
}

static void
exec_integer(struct ms_reply_sink *sink, const redisReadTask *task, long long value)
{
	struct exec_sink *e = (struct exec_sink *)sink;
	/* BITFIELD's u40 values are never negative; 0 reads as a negative did */
	uint64_t v = value > 0 ? (uint64_t)value : 0;

	if (task->parent == NULL || task->parent->parent == NULL)
		exec_put(e, (size_t)task->idx, MS_STORE_REPLY_INT, v);
	else
		exec_put(e, (size_t)task->parent->idx, (size_t)task->idx, v);
}

/* Returns 1 when committed, 0 when EXEC was aborted by the WATCH. */
static int
learn_commit(struct learn *l, char *err, size_t errlen)
{
	struct exec_sink e = {.sink.integer = exec_integer, .l = l};
	redisReply *reply;
	size_t queued, i;
	int ret;

	if (append_transaction(l, &queued) < 0 || ms_store_flush_output(l->ctx) < 0)
		return learn_failed(l, NULL, err, errlen);
	if (l->overlap != NULL) {
		l->next_digest = l->overlap(l->overlap_context);
		l->overlap = NULL;
	}
	for (i = 0; i < queued + 1; i++) { /* +OK for MULTI, +QUEUED each */
		reply = ms_store_get_reply(l->store, l->ctx);
		if (reply == NULL || reply->type != REDIS_REPLY_STATUS)
			return learn_failed(l, reply, err, errlen);
		freeReplyObject(reply);
	}
	e.unlearn_chunks = l->old_cls != 0 ? chunks(l->count) : 0;
	e.learn_first = l->old_cls != 0 ? chunks(l->count) + 1 : 0;
	e.learn_end = e.learn_first + chunks(l->count);
	l->new_tokens = 0;
	l->nfresh = 0;
	ret = ms_store_read_uints(l->store, l->ctx, queued, true, exec_put, &e, err, errlen);
	if (ret < 0)
		return -1;
	if (ret > 0)
		return 1;
	/* not all integers (aborted, an error): what was counted is read again */
	l->new_tokens = 0;
	l->nfresh = 0;
	if (ms_store_read_sink(l->store, l->ctx, &e.sink, err, errlen) < 0)
		return -1;
	if (e.sink.root_type == REDIS_REPLY_NIL)
		return 0;
	if (e.sink.root_type != REDIS_REPLY_ARRAY || e.sink.root_elements != queued ||
	    e.sink.unexpected || e.sink.error[0] != '\0')
		return ms_store_sink_failed(l->store, l->ctx, &e.sink, err, errlen);
	return 1;
}

/* The next message's lookup rides on this learn's last write, so that its
 * answer is there when the next learn asks: one wait less per message. */
static int
send_lookup_ahead(struct learn *l)
{
	struct ms_store_ahead *ahead = &l->store->ahead;
	struct ms_redis_conn *conn = ms_store_conn_of(l->store, l->ctx);

	if (l->next_digest == NULL)
		return 0;
	ahead->load = !conn->sweep_loaded;
	if (append_lookup(l, l->next_digest, ahead->load) < 0)
		return -1;
	ahead->sent = true;
	ahead->generation = conn->generation;
	memcpy(ahead->digest, l->next_digest, MS_DIGEST_SIZE);
	snprintf(ahead->digests_key, sizeof(ahead->digests_key), "%s", l->keys.digests);
	return 0;
}

/* After the transaction, sent without waiting (their replies are skipped
 * before the next command's): the recent mark of the slots that now hold
 * one sighting, the expiry sweep, and the token count. Only a slot holding
 * one sighting can expire, so only it needs the mark, and before the sweep
 * (doc/redis-schema.md, "Expire"); a slot seen more often keeps its counts
 * whatever its mark says. */
static void
send_after_commit(struct learn *l)
{
	struct ms_redis_conn *conn = ms_store_conn_of(l->store, l->ctx);
	struct ms_resp *resp = &l->store->resp;
	struct ms_resp_fixed set, one;
	unsigned int sent = 0;
	char bits[16], sweep[16], tokens[24];
	size_t i, end;
	int ret = 0;

	ms_resp_fixed_init(&set);
	ms_resp_fixed_add(&set, "SET");
	ms_resp_fixed_add(&set, "u1");
	ms_resp_fixed_init(&one);
	ms_resp_fixed_add(&one, "1");

	snprintf(bits, sizeof(bits), "%u", l->store->table_bits);
	snprintf(sweep, sizeof(sweep), "%u",
	         ((1u << l->store->table_bits) + MS_STORE_SWEEP_CYCLE_LEARNS - 1) /
	                 MS_STORE_SWEEP_CYCLE_LEARNS);
	for (i = 0; i < l->nfresh && ret == 0; i = end, sent++) {
		end = l->nfresh - i > LEARN_CHUNK ? i + LEARN_CHUNK : l->nfresh;
		ms_resp_command(resp, 2 + 4 * (end - i));
		ms_resp_arg(resp, "BITFIELD", 8);
		ms_resp_arg_str(resp, l->keys.table);
		for (; i < end; i++) {
			ms_resp_arg_fixed(resp, &set);
			ms_resp_arg_uint(resp, '\0',
			                 (unsigned long long)l->fresh[i] * MS_STORE_SLOT_BITS + 39);
			ms_resp_arg_fixed(resp, &one);
		}
		ret = ms_store_append_resp(l->store, l->ctx);
	}
	/* a NOSCRIPT reply (SCRIPT FLUSH since we loaded it) makes the next
	 * learn load it again: ms_store_prepare_read */
	if (ret == 0) {
		ret = ms_store_append_strs(l->store, l->ctx, "EVALSHA", l->store->sweep_sha, "2",
		                           l->keys.meta, l->keys.table, bits, sweep, NULL);
		sent++;
	}
	if (ret == 0 && l->new_tokens != 0) {
		snprintf(tokens, sizeof(tokens), "%lld", l->new_tokens);
		ret = ms_store_append_strs(l->store, l->ctx, "HINCRBY", l->keys.meta, "tokens",
		                           tokens, NULL);
		sent++;
	}
	if (ret == 0)
		ret = send_lookup_ahead(l);
	if (ret == 0 && ms_store_flush_output(l->ctx) == 0)
		conn->pending += sent;
	else
		ms_store_conn_drop(conn);
}

static int
learn_run(struct learn *l, enum ms_learn_result *result_r, char *err, size_t errlen)
{
	int tries, ret;

	for (tries = 0; tries < LEARN_TRIES; tries++) {
		if (learn_lookup(l, err, errlen) < 0)
			return -1;
		if (l->old_cls == l->cls) {
			*result_r = MS_LEARN_ALREADY;
			if (ms_store_append_strs(l->store, l->ctx, "UNWATCH", NULL) < 0 ||
			    ms_store_flush_output(l->ctx) < 0)
				ms_store_conn_drop(ms_store_conn_of(l->store, l->ctx));
			else
				ms_store_conn_of(l->store, l->ctx)->pending++;
			return 0;
		}
		if ((ret = learn_commit(l, err, errlen)) < 0)
			return -1;
		if (ret == 1) {
			*result_r = l->old_cls != 0 ? MS_LEARN_MOVED : MS_LEARN_DONE;
			send_after_commit(l);
			return 0;
		}
	}
	return ms_error(err, errlen, "learn: the digests kept changing (%d tries)", tries);
}

int
ms_store_learn_overlap(struct ms_store *store, const char *user, enum ms_class cls,
                       const unsigned char digest[MS_DIGEST_SIZE], const uint64_t *hashes,
                       size_t count, ms_store_overlap_fn *overlap, void *context,
                       enum ms_learn_result *result_r, char *err, size_t errlen)
{
	struct learn l = {
	        .store = store,
	        .digest = digest,
	        .hashes = hashes,
	        .count = count,
	        .cls = cls == MS_CLASS_SPAM ? 'S' : 'H',
	        .overlap = overlap,
	        .overlap_context = context,
	};

	if (ms_store_make_keys(store, user, &l.keys, err, errlen) < 0)
		return -1;
	if ((l.ctx = ms_store_conn_get(store, false, err, errlen)) == NULL)
		return -1;
	if ((l.fresh = ms_store_fresh_slots(store, count)) == NULL)
		return ms_error(err, errlen, "out of memory");
	return learn_run(&l, result_r, err, errlen);
}

int
ms_store_learn(struct ms_store *store, const char *user, enum ms_class cls,
               const unsigned char digest[MS_DIGEST_SIZE], const uint64_t *hashes, size_t count,
               enum ms_learn_result *result_r, char *err, size_t errlen)
{
	return ms_store_learn_overlap(store, user, cls, digest, hashes, count, NULL, NULL, result_r,
	                              err, errlen);
}
