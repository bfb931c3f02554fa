/* Learning, apart from classifying: the message digest needs libcrypto,
 * and a binary that only classifies (mailsift-lmtpd) links without it. */
#include "ms-filter-private.h"
#include "ms-digest.h"
#include "ms-store.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* ms_filter_learn_many's state: message i is learned from slot i % 2
 * while message i + 1 is prepared (digest, tokens) in the other. */
struct learn_batch {
	struct ms_filter *filter;
	const struct ms_filter_message *msgs;
	struct ms_learn_outcome *outcomes;
	size_t count;
	size_t current;  /* being learned */
	size_t prepared; /* messages prepared so far */
	unsigned char digests[MS_FILTER_INFLIGHT][MS_DIGEST_SIZE];
	bool ready[MS_FILTER_INFLIGHT];
};

static void
learn_prepare(struct learn_batch *b)
{
	size_t i = b->prepared++, slot = i % MS_FILTER_INFLIGHT;
	struct ms_learn_outcome *o = &b->outcomes[i];

	memset(o, 0, sizeof(*o));
	b->ready[slot] = false;
	if (ms_message_digest(b->msgs[i].data, b->msgs[i].size, b->digests[slot]) < 0) {
		o->status = -1;
		snprintf(o->err, sizeof(o->err), "message digest failed");
	} else if (ms_filter_tokenize(&b->filter->inflight[slot].tokens, b->msgs[i].data,
	                              b->msgs[i].size) < 0) {
		o->status = -1;
		snprintf(o->err, sizeof(o->err), "out of memory");
	} else
		b->ready[slot] = true;
}

/* While Redis runs message current's transaction: the next one, whose slot
 * is free (never the one after, which would overwrite current's tokens).
 * Its digest, if it is ready to be learned next, so its lookup goes ahead. */
static const unsigned char *
learn_prepare_next(void *context)
{
	struct learn_batch *b = context;
	size_t slot = (b->current + 1) % MS_FILTER_INFLIGHT;

	if (b->prepared != b->current + 1 || b->prepared >= b->count)
		return NULL;
	learn_prepare(b);
	return b->ready[slot] ? b->digests[slot] : NULL;
}

void
ms_filter_learn_many(struct ms_filter *filter, const char *user, enum ms_class cls,
                     const struct ms_filter_message *msgs, size_t count,
                     struct ms_learn_outcome *outcomes)
{
	struct learn_batch b = {
	        .filter = filter, .msgs = msgs, .outcomes = outcomes, .count = count};
	struct ms_learn_outcome *o;
	struct ms_tokens *tokens;
	size_t slot;

	for (b.current = 0; b.current < count; b.current++) {
		if (b.prepared == b.current)
			learn_prepare(&b);
		slot = b.current % MS_FILTER_INFLIGHT;
		if (!b.ready[slot])
			continue;
		o = &outcomes[b.current];
		tokens = &filter->inflight[slot].tokens;
		o->status = ms_store_learn_overlap(
		        filter->store, ms_filter_store_user(filter, user), cls, b.digests[slot],
		        tokens->hashes, tokens->count, learn_prepare_next, &b, &o->result, o->err,
		        sizeof(o->err));
	}
	ms_filter_trim(filter);
}

int
ms_filter_learn(struct ms_filter *filter, const char *user, enum ms_class cls,
                const unsigned char *msg, size_t size, enum ms_learn_result *result_r, char *err,
                size_t errlen)
{
	struct ms_filter_message m = {.data = msg, .size = size};
	struct ms_learn_outcome o;

	ms_filter_learn_many(filter, user, cls, &m, 1, &o);
	if (o.status < 0) {
		snprintf(err, errlen, "%s", o.err);
		return -1;
	}
	*result_r = o.result;
	return 0;
}
