/* Learning: a WATCH/MULTI/EXEC transaction, so that messages' digests and
 * their token counts change together or not at all. A transaction learns a
 * batch of messages of one class and owner: a token slot that several of
 * them share gets one INCRBY of their sum, and Redis parses about half the
 * subcommands it would one message at a time (doc/redis-schema.md). The
 * token updates are plain BITFIELD commands: measured, Lua building the same
 * arguments cost five times the update itself. */
#include "ms-store-private.h"
#include "ms-util.h"
#include "ms-store-scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slots per BITFIELD command: Redis refuses more than 1M arguments. */
#define LEARN_CHUNK 4096
/* EXEC fails when another learner changed the digests meanwhile: retry. */
#define LEARN_TRIES 5

/* Distinct slots and how many of the batch's tokens fall in each. */
struct runs {
	unsigned int *slot;
	unsigned int *hits;
	size_t count;
};

struct learn {
	struct ms_store *store;
	redisContext *ctx;
	struct ms_store_keys keys;
	struct ms_store_learn_msg *msgs;
	size_t nmsgs;
	char cls;        /* 'S' or 'H' */
	char bits[16];   /* table_bits, as the meta hash keeps it */
	char *old_cls;   /* per message: as learned before, or 0 */
	size_t nlearned; /* DONE or MOVED */
	size_t nmoved;   /* of them, MOVED */
	struct runs unlearn, learn;
	long long new_tokens;
	/* slots this batch made hold sightings after none: they get the mark */
	unsigned int *fresh;
	size_t nfresh;
	/* slots at a count's high water: they are halved */
	struct ms_store_full *full;
	size_t nfull;
	/* called once while Redis runs the first transaction, then NULL */
	ms_store_overlap_fn *overlap;
	void *overlap_context;
};

static const char *
class_counter(char cls)
{
	return cls == 'S' ? "spam" : "ham";
}

static char
other_class(char cls)
{
	return cls == 'S' ? 'H' : 'S';
}

static unsigned long long
class_one(char cls)
{
	return cls == 'S' ? MS_STORE_SPAM_ONE : MS_STORE_HAM_ONE;
}

static int
learn_failed(struct learn *l, redisReply *reply, char *err, size_t errlen)
{
	return ms_store_reply_failed(l->store, l->ctx, reply, err, errlen);
}

/* Room in the store's learn buffers for count tokens, and the per message
 * classes: reused from learn to learn. The token arrays are scratch, filled
 * anew by every learn, so they are one block, replaced when too small. */
static int
learn_room(struct ms_store *store, size_t count, size_t nmsgs)
{
	struct ms_store_learn_buf *b = &store->learn;
	struct ms_store_full *block;
	char *old;

	if (nmsgs > b->msgs_capacity) {
		if ((old = realloc(b->old_cls, nmsgs)) == NULL)
			return -1;
		b->old_cls = old;
		b->msgs_capacity = nmsgs;
	}
	if (count <= b->capacity)
		return 0;
	if ((block = malloc(count * (sizeof(*b->full) + 3 * sizeof(*b->slots)))) == NULL)
		return -1;
	free(b->full);
	b->full = block;
	b->slots = (unsigned int *)(block + count);
	b->hits = b->slots + count;
	b->fresh = b->hits + count;
	b->capacity = count;
	return 0;
}

/* The lookup's commands: the sweep script loaded if load, the digests
 * watched, how the batch's messages and the table were learned before. */
static int
append_lookup(struct learn *l, bool load)
{
	struct ms_resp *resp = &l->store->resp;
	size_t i;

	if ((load &&
	     redisAppendCommand(l->ctx, "SCRIPT LOAD %s", MS_STORE_SWEEP_LUA) != REDIS_OK) ||
	    ms_store_append_strs(l->store, l->ctx, "WATCH", l->keys.digests, NULL) < 0)
		return -1;
	ms_resp_command(resp, 2 + l->nmsgs);
	ms_resp_arg_str(resp, "HMGET");
	ms_resp_arg_str(resp, l->keys.digests);
	for (i = 0; i < l->nmsgs; i++)
		ms_resp_arg(resp, l->msgs[i].digest, MS_DIGEST_SIZE);
	if (ms_store_append_resp(l->store, l->ctx) < 0 ||
	    ms_store_append_strs(l->store, l->ctx, "HGET", l->keys.meta, "bits", NULL) < 0)
		return -1;
	return 0;
}

/* A message's class as the digests hash has it: 'S', 'H', or 0. */
static bool
read_class(const redisReply *reply, char *cls_r)
{
	if (reply->type != REDIS_REPLY_NIL && reply->type != REDIS_REPLY_STRING)
		return false;
	*cls_r = reply->type == REDIS_REPLY_STRING && reply->len == 1 ? reply->str[0] : 0;
	return true;
}

/* Round trip 1: load the sweep script on a new connection (or after a
 * NOSCRIPT among the replies skipped first), WATCH the digests, and read how
 * the messages and the table were learned before. */
static int
learn_lookup(struct learn *l, char *err, size_t errlen)
{
	struct ms_redis_conn *conn = ms_store_conn_of(l->store, l->ctx);
	redisReply *reply;
	uint64_t bits;
	bool load;
	size_t i;

	if (ms_store_prepare_read(l->store, l->ctx) < 0)
		return learn_failed(l, NULL, err, errlen);
	load = !conn->sweep_loaded;
	if (append_lookup(l, load) < 0)
		return learn_failed(l, NULL, err, errlen);
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
	if (!ms_store_is_array(reply, l->nmsgs))
		return learn_failed(l, reply, err, errlen);
	for (i = 0; i < l->nmsgs; i++) {
		if (!read_class(reply->element[i], &l->old_cls[i]))
			return learn_failed(l, reply, err, errlen);
	}
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

/* Each message's result, as learning them one after the other would give:
 * a digest met earlier in the batch is learned as cls by then. */
static void
learn_decide(struct learn *l)
{
	size_t i, j;
	char old;

	l->nlearned = 0;
	l->nmoved = 0;
	for (i = 0; i < l->nmsgs; i++) {
		old = l->old_cls[i];
		for (j = 0; j < i && old != l->cls; j++) {
			if (memcmp(l->msgs[j].digest, l->msgs[i].digest, MS_DIGEST_SIZE) == 0)
				old = l->cls;
		}
		l->old_cls[i] = old;
		if (old == l->cls) {
			l->msgs[i].result = MS_LEARN_ALREADY;
			continue;
		}
		l->msgs[i].result = old != 0 ? MS_LEARN_MOVED : MS_LEARN_DONE;
		l->nlearned++;
		l->nmoved += old != 0;
	}
}

/* Highest first: BITFIELD grows the table once per command, to its highest
 * offset, and a table grown command by command in ascending order kept
 * Redis's spare room (25.2 MB for a 21 MB table). */
static int
compare_slots(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;

	return x > y ? -1 : x < y;
}

/* The slots of the tokens of the messages to unlearn (MOVED) or to learn
 * (all but ALREADY), from r->slot[0] on, sorted and counted: each distinct
 * slot once, with its hits. */
static void
collect_runs(struct learn *l, bool unlearn, struct runs *r)
{
	const struct ms_store_learn_msg *m;
	size_t i, k, n = 0;

	for (i = 0; i < l->nmsgs; i++) {
		m = &l->msgs[i];
		if (m->result == MS_LEARN_ALREADY || (unlearn && m->result != MS_LEARN_MOVED))
			continue;
		for (k = 0; k < m->count; k++)
			r->slot[n++] = ms_store_token_slot(l->store, m->hashes[k]);
	}
	if (n > 1)
		qsort(r->slot, n, sizeof(*r->slot), compare_slots);
	r->count = 0;
	for (i = 0; i < n; i++) {
		if (r->count > 0 && r->slot[r->count - 1] == r->slot[i]) {
			r->hits[r->count - 1]++;
			continue;
		}
		r->slot[r->count] = r->slot[i];
		r->hits[r->count++] = 1;
	}
}

/* The runs of the unlearn, then of the learn after them in the buffers. */
static int
learn_collect(struct learn *l)
{
	struct ms_store_learn_buf *b = &l->store->learn;
	size_t i, moved = 0, learned = 0;

	for (i = 0; i < l->nmsgs; i++) {
		if (l->msgs[i].result != MS_LEARN_ALREADY)
			learned += l->msgs[i].count;
		if (l->msgs[i].result == MS_LEARN_MOVED)
			moved += l->msgs[i].count;
	}
	if (learn_room(l->store, moved + learned, l->nmsgs) < 0)
		return -1;
	l->unlearn.slot = b->slots;
	l->unlearn.hits = b->hits;
	collect_runs(l, true, &l->unlearn);
	l->learn.slot = b->slots + moved;
	l->learn.hits = b->hits + moved;
	collect_runs(l, false, &l->learn);
	l->fresh = b->fresh;
	l->full = b->full;
	return 0;
}

/* A BITFIELD of the table with args subcommand arguments, saturating or
 * not. */
static void
bitfield_command(struct learn *l, size_t args, bool saturate)
{
	struct ms_resp *resp = &l->store->resp;

	ms_resp_command(resp, 2 + (saturate ? 2 : 0) + args);
	ms_resp_arg(resp, "BITFIELD", 8);
	ms_resp_arg_str(resp, l->keys.table);
	if (saturate) {
		ms_resp_arg(resp, "OVERFLOW", 8);
		ms_resp_arg(resp, "SAT", 3);
	}
}

/* One BITFIELD per chunk of slots: add hits times one sighting of cls to
 * each. INCRBY of the whole slot: its reply says whether the slot was empty
 * before (exec_put), and a count only overflows into the next field past
 * its maximum (doc/redis-schema.md, "Keys"). */
static int
append_learn(struct learn *l, const struct runs *r)
{
	struct ms_resp *resp = &l->store->resp;
	struct ms_resp_fixed incrby;
	unsigned long long one = class_one(l->cls);
	size_t i, end;

	ms_resp_fixed_init(&incrby);
	ms_resp_fixed_add(&incrby, "INCRBY");
	ms_resp_fixed_add(&incrby, "u40");
	for (i = 0; i < r->count; i = end) {
		end = r->count - i > LEARN_CHUNK ? i + LEARN_CHUNK : r->count;
		bitfield_command(l, 4 * (end - i), true);
		for (; i < end; i++) {
			ms_resp_arg_fixed(resp, &incrby);
			ms_resp_arg_uint(resp, '#', r->slot[i]);
			ms_resp_arg_uint(resp, '\0', r->hits[i] * one);
		}
		if (ms_store_append_resp(l->store, l->ctx) < 0)
			return -1;
	}
	return 0;
}

/* The unlearn of a MOVED message's old class cls: per slot, GET of the
 * whole slot, then INCRBY of -hits on cls's own field, which saturates at
 * zero. On the whole slot a subtraction would borrow from the next field
 * when the count is already zero: a slot expiry emptied, that a ham token
 * took since, would read 524,287 spam sightings. */
static int
append_unlearn(struct learn *l, const struct runs *r, char cls)
{
	struct ms_resp *resp = &l->store->resp;
	struct ms_resp_fixed get, incrby;
	unsigned int field = cls == 'S' ? MS_STORE_SPAM_OFFSET : 0;
	size_t i, end;

	ms_resp_fixed_init(&get);
	ms_resp_fixed_add(&get, "GET");
	ms_resp_fixed_add(&get, "u40");
	ms_resp_fixed_init(&incrby);
	ms_resp_fixed_add(&incrby, "INCRBY");
	ms_resp_fixed_add(&incrby, cls == 'S' ? "u19" : "u20");
	for (i = 0; i < r->count; i = end) {
		end = r->count - i > LEARN_CHUNK ? i + LEARN_CHUNK : r->count;
		bitfield_command(l, 7 * (end - i), true);
		for (; i < end; i++) {
			ms_resp_arg_fixed(resp, &get);
			ms_resp_arg_uint(resp, '#', r->slot[i]);
			ms_resp_arg_fixed(resp, &incrby);
			ms_resp_arg_uint(resp, '\0',
			                 (unsigned long long)r->slot[i] * MS_STORE_SLOT_BITS +
			                         field);
			ms_resp_arg_uint(resp, '-', r->hits[i]);
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

/* HINCRBY of a class's counter by delta */
static int
append_counter(struct learn *l, char cls, long long delta)
{
	char number[24];

	snprintf(number, sizeof(number), "%lld", delta);
	return ms_store_append_strs(l->store, l->ctx, "HINCRBY", l->keys.meta, class_counter(cls),
	                            number, NULL);
}

/* HSET of the learned messages' digests to cls */
static int
append_digests(struct learn *l)
{
	struct ms_resp *resp = &l->store->resp;
	const char *value = l->cls == 'S' ? "S" : "H";
	size_t i;

	ms_resp_command(resp, 2 + 2 * l->nlearned);
	ms_resp_arg_str(resp, "HSET");
	ms_resp_arg_str(resp, l->keys.digests);
	for (i = 0; i < l->nmsgs; i++) {
		if (l->msgs[i].result == MS_LEARN_ALREADY)
			continue;
		ms_resp_arg(resp, l->msgs[i].digest, MS_DIGEST_SIZE);
		ms_resp_arg_str(resp, value);
	}
	return ms_store_append_resp(l->store, l->ctx);
}

/* Round trip 2: the transaction. Returns the number of queued commands. */
static int
append_transaction(struct learn *l, size_t *queued_r)
{
	size_t queued = 0;

	if (ms_store_append_strs(l->store, l->ctx, "MULTI", NULL) < 0)
		return -1;
	if (l->nmoved > 0) {
		if (append_unlearn(l, &l->unlearn, other_class(l->cls)) < 0 ||
		    append_counter(l, other_class(l->cls), -(long long)l->nmoved) < 0)
			return -1;
		queued += chunks(l->unlearn.count) + 1;
	}
	if (append_learn(l, &l->learn) < 0 ||
	    append_counter(l, l->cls, (long long)l->nlearned) < 0 || append_digests(l) < 0 ||
	    ms_store_append_strs(l->store, l->ctx, "HSETNX", l->keys.meta, "bits", l->bits, NULL) <
	            0 ||
	    ms_store_append_strs(l->store, l->ctx, "EXEC", NULL) < 0)
		return -1;
	*queued_r = queued + chunks(l->learn.count) + 3;
	return 0;
}

/* The transaction's reply, counted as it is read: slots that went from
 * empty to used (noted in fresh), or back. EXEC's array holds, in order,
 * the unlearn's BITFIELD replies (per slot its 40 bits, then the class's
 * new count) and its HINCRBY (if moving), the learn's BITFIELD replies
 * (INCRBY's new value per slot), then three integers. */
struct exec_sink {
	struct ms_reply_sink sink;
	struct learn *l;
	size_t unlearn_chunks; /* EXEC elements of the unlearn's updates */
	size_t learn_first, learn_end;
	uint64_t before; /* the unlearn: the slot's GET, before its INCRBY */
};

/* Whether a slot that held before (its whole 40 bits) holds no sighting
 * once cls's count is down to count. */
static bool
unlearn_empties(char cls, uint64_t before, uint64_t count)
{
	uint64_t spam = MS_STORE_SLOT_SPAM(before), ham = MS_STORE_SLOT_HAM(before);

	if (spam + ham == 0)
		return false; /* empty already (expired) */
	return count == 0 && (cls == 'S' ? ham : spam) == 0;
}

/* One integer of EXEC's reply: element idx, its sub-th value
 * (MS_STORE_REPLY_INT: the element is the integer). ms_store_read_uints
 * calls it directly, the general reader through exec_integer. */
static void
exec_put(void *context, size_t idx, size_t sub, uint64_t value)
{
	struct exec_sink *e = context;
	struct learn *l = e->l;
	size_t k;

	if (sub == MS_STORE_REPLY_INT)
		return; /* EXEC's own integers: counters, digest, sweep */
	if (idx < e->unlearn_chunks) {
		/* GET, then INCRBY's new count: emptied by this unlearn? */
		if (sub % 2 == 0)
			e->before = value;
		else if (unlearn_empties(other_class(l->cls), e->before, value))
			l->new_tokens--;
	} else if (idx >= e->learn_first && idx < e->learn_end) {
		/* counts now exactly what the batch added: empty before (the
		 * mark aside) */
		k = (idx - e->learn_first) * LEARN_CHUNK + sub;
		if (k >= l->learn.count)
			return;
		if ((value & ~1ULL) == l->learn.hits[k] * class_one(l->cls)) {
			l->new_tokens++;
			l->fresh[l->nfresh++] = l->learn.slot[k];
		}
		if (MS_STORE_SLOT_SPAM(value) >= MS_STORE_SPAM_HIGH ||
		    MS_STORE_SLOT_HAM(value) >= MS_STORE_HAM_HIGH) {
			l->full[l->nfull].slot = l->learn.slot[k];
			l->full[l->nfull++].value = value;
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

/* What exec_put counts from the transaction's reply, from zero. */
static void
counted_reset(struct learn *l)
{
	l->new_tokens = 0;
	l->nfresh = 0;
	l->nfull = 0;
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
		l->overlap(l->overlap_context);
		l->overlap = NULL;
	}
	for (i = 0; i < queued + 1; i++) { /* +OK for MULTI, +QUEUED each */
		reply = ms_store_get_reply(l->store, l->ctx);
		if (reply == NULL || reply->type != REDIS_REPLY_STATUS)
			return learn_failed(l, reply, err, errlen);
		freeReplyObject(reply);
	}
	e.unlearn_chunks = l->nmoved > 0 ? chunks(l->unlearn.count) : 0;
	e.learn_first = l->nmoved > 0 ? e.unlearn_chunks + 1 : 0;
	e.learn_end = e.learn_first + chunks(l->learn.count);
	counted_reset(l);
	ret = ms_store_read_uints(l->store, l->ctx, queued, true, exec_put, &e, err, errlen);
	if (ret < 0)
		return -1;
	if (ret > 0)
		return 1;
	/* not all integers (aborted, an error): what was counted is read again */
	counted_reset(l);
	if (ms_store_read_sink(l->store, l->ctx, &e.sink, err, errlen) < 0)
		return -1;
	if (e.sink.root_type == REDIS_REPLY_NIL)
		return 0;
	if (e.sink.root_type != REDIS_REPLY_ARRAY || e.sink.root_elements != queued ||
	    e.sink.unexpected || e.sink.error[0] != '\0')
		return ms_store_sink_failed(l->store, l->ctx, &e.sink, err, errlen);
	return 1;
}

/* A slot's counts halved, its mark kept: the ratio of spam to ham, which
 * is what a token says, stays. */
static uint64_t
halved(uint64_t value)
{
	return (MS_STORE_SLOT_HAM(value) / 2) * MS_STORE_HAM_ONE +
	       (MS_STORE_SLOT_SPAM(value) / 2) * MS_STORE_SPAM_ONE + (value & 1);
}

/* BITFIELD SETs, in commands of LEARN_CHUNK: the recent mark of the n
 * slots fresh, or (fresh NULL) the halved counts of the n slots full.
 * Returns the commands, or -1. */
static int
append_sets(struct learn *l, const unsigned int *fresh, const struct ms_store_full *full, size_t n)
{
	struct ms_resp *resp = &l->store->resp;
	struct ms_resp_fixed set;
	size_t i, end;
	int sent = 0;

	ms_resp_fixed_init(&set);
	ms_resp_fixed_add(&set, "SET");
	ms_resp_fixed_add(&set, fresh != NULL ? "u1" : "u40");
	for (i = 0; i < n; i = end, sent++) {
		end = n - i > LEARN_CHUNK ? i + LEARN_CHUNK : n;
		bitfield_command(l, 4 * (end - i), false);
		for (; i < end; i++) {
			ms_resp_arg_fixed(resp, &set);
			if (fresh != NULL) {
				ms_resp_arg_uint(resp, '\0',
				                 (unsigned long long)fresh[i] * MS_STORE_SLOT_BITS +
				                         39);
				ms_resp_arg(resp, "1", 1);
			} else {
				ms_resp_arg_uint(resp, '#', full[i].slot);
				ms_resp_arg_uint(resp, '\0', halved(full[i].value));
			}
		}
		if (ms_store_append_resp(l->store, l->ctx) < 0)
			return -1;
	}
	return sent;
}

/* After the transaction, sent without waiting (their replies are skipped
 * before the next command's): the recent mark of the slots the batch made
 * hold sightings, the expiry sweep (a slice per learned message), the
 * halving of slots at a count's high water, and the token count. Only a
 * slot holding one sighting can expire, and a slot only comes to hold one
 * through a learn into an empty slot, so only those need the mark, and
 * before the sweep (doc/redis-schema.md, "Expire"). The halving reads
 * nothing back: a sighting another learner adds in between is lost, one
 * of half a million. */
static void
send_after_commit(struct learn *l)
{
	struct ms_redis_conn *conn = ms_store_conn_of(l->store, l->ctx);
	char sweep[24], tokens[24];
	int sent = 0, n;

	snprintf(sweep, sizeof(sweep), "%llu",
	         (unsigned long long)l->nlearned *
	                 (((1u << l->store->table_bits) + MS_STORE_SWEEP_CYCLE_LEARNS - 1) /
	                  MS_STORE_SWEEP_CYCLE_LEARNS));
	if ((n = append_sets(l, l->fresh, NULL, l->nfresh)) < 0)
		goto failed;
	sent += n;
	/* a NOSCRIPT reply (SCRIPT FLUSH since we loaded it) makes the next
	 * learn load it again: ms_store_prepare_read */
	if (ms_store_append_strs(l->store, l->ctx, "EVALSHA", l->store->sweep_sha, "2",
	                         l->keys.meta, l->keys.table, l->bits, sweep, NULL) < 0)
		goto failed;
	sent++;
	if ((n = append_sets(l, NULL, l->full, l->nfull)) < 0)
		goto failed;
	sent += n;
	if (l->new_tokens != 0) {
		snprintf(tokens, sizeof(tokens), "%lld", l->new_tokens);
		if (ms_store_append_strs(l->store, l->ctx, "HINCRBY", l->keys.meta, "tokens",
		                         tokens, NULL) < 0)
			goto failed;
		sent++;
	}
	if (ms_store_flush_output(l->ctx) < 0)
		goto failed;
	conn->pending += (unsigned int)sent;
	return;
failed:
	ms_store_conn_drop(conn);
}

static int
learn_run(struct learn *l, char *err, size_t errlen)
{
	int tries, ret;

	for (tries = 0; tries < LEARN_TRIES; tries++) {
		if (learn_lookup(l, err, errlen) < 0)
			return -1;
		learn_decide(l);
		if (l->nlearned == 0) {
			if (ms_store_append_strs(l->store, l->ctx, "UNWATCH", NULL) < 0 ||
			    ms_store_flush_output(l->ctx) < 0)
				ms_store_conn_drop(ms_store_conn_of(l->store, l->ctx));
			else
				ms_store_conn_of(l->store, l->ctx)->pending++;
			return 0;
		}
		if (learn_collect(l) < 0) {
			ms_store_conn_drop(ms_store_conn_of(l->store, l->ctx)); /* and the WATCH */
			return ms_error(err, errlen, "out of memory");
		}
		if ((ret = learn_commit(l, err, errlen)) < 0)
			return -1;
		if (ret == 1) {
			send_after_commit(l);
			return 0;
		}
	}
	return ms_error(err, errlen, "learn: the digests kept changing (%d tries)", tries);
}

int
ms_store_learn_batch(struct ms_store *store, const char *user, enum ms_class cls,
                     struct ms_store_learn_msg *msgs, size_t count, ms_store_overlap_fn *overlap,
                     void *context, char *err, size_t errlen)
{
	struct learn l = {
	        .store = store,
	        .msgs = msgs,
	        .nmsgs = count,
	        .cls = cls == MS_CLASS_SPAM ? 'S' : 'H',
	        .overlap = overlap,
	        .overlap_context = context,
	};

	if (count == 0)
		return 0;
	snprintf(l.bits, sizeof(l.bits), "%u", store->table_bits);
	if (ms_store_make_keys(store, user, &l.keys, err, errlen) < 0)
		return -1;
	if ((l.ctx = ms_store_conn_get(store, false, err, errlen)) == NULL)
		return -1;
	if (learn_room(store, 0, count) < 0)
		return ms_error(err, errlen, "out of memory");
	l.old_cls = store->learn.old_cls;
	return learn_run(&l, err, errlen);
}

int
ms_store_learn(struct ms_store *store, const char *user, enum ms_class cls,
               const unsigned char digest[MS_DIGEST_SIZE], const uint64_t *hashes, size_t count,
               enum ms_learn_result *result_r, char *err, size_t errlen)
{
	struct ms_store_learn_msg m = {.digest = digest, .hashes = hashes, .count = count};

	if (ms_store_learn_batch(store, user, cls, &m, 1, NULL, NULL, err, errlen) < 0)
		return -1;
	*result_r = m.result;
	return 0;
}
