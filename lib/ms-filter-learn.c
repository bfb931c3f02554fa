/* Learning, apart from classifying: the message digest needs libcrypto,
 * and a binary that only classifies (mailsift-lmtpd) links without it. */
#include "ms-filter-private.h"
#include "ms-digest.h"
#include "ms-store.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages learned in one store transaction (ms_store_learn_batch): the
 * more, the more of their tokens share a slot and are sent once (on the
 * training half, 69 % of the token occurrences are distinct slots in
 * batches of 16, 56 % in batches of 64, 45 % in batches of 256), the more
 * memory and the longer one transaction holds Redis. Measured with
 * bench/accuracy: bench/README.md. */
#define LEARN_BATCH 64
/* A batch stops taking messages once it holds this many tokens (1 MB of
 * hashes): big messages learn in smaller batches. */
#define LEARN_BATCH_TOKENS 131072

/* Messages prepared (digest, tokens) for one transaction. */
struct learn_batch {
	struct ms_store_learn_msg msgs[LEARN_BATCH];
	size_t index[LEARN_BATCH]; /* in ms_filter_learn_many's list */
	size_t offset[LEARN_BATCH];
	unsigned char digests[LEARN_BATCH][MS_DIGEST_SIZE];
	uint64_t *hashes; /* all the messages' tokens, one after the other */
	size_t nhashes, capacity;
	size_t count;
	bool prepared;
};

/* ms_filter_learn_many's state: one batch is learned while the next is
 * prepared, during the transaction. */
struct learn_many {
	struct ms_filter *filter;
	const struct ms_filter_message *msgs;
	struct ms_learn_outcome *outcomes;
	size_t count;
	size_t next; /* the first message not in a batch yet */
	struct learn_batch batches[2];
	struct learn_batch *preparing;
};

static int
batch_add_hashes(struct learn_batch *b, const struct ms_tokens *tokens)
{
	uint64_t *hashes;
	size_t need = b->nhashes + tokens->count, capacity;

	if (need > b->capacity) {
		/* doubling: a batch grows message by message */
		capacity = b->capacity * 2 > need ? b->capacity * 2 : need;
		if ((hashes = realloc(b->hashes, capacity * sizeof(*hashes))) == NULL)
			return -1;
		b->hashes = hashes;
		b->capacity = capacity;
	}
	if (tokens->count > 0)
		memcpy(b->hashes + b->nhashes, tokens->hashes, tokens->count * sizeof(*hashes));
	b->nhashes = need;
	return 0;
}

/* Message i into batch b: 0, or -1 with its outcome failed. */
static int
batch_add(struct learn_many *lm, struct learn_batch *b, size_t i)
{
	struct ms_learn_outcome *o = &lm->outcomes[i];
	struct ms_tokens *tokens = &lm->filter->inflight[0].tokens;
	size_t k = b->count;

	memset(o, 0, sizeof(*o));
	o->status = -1;
	if (ms_message_digest(lm->msgs[i].data, lm->msgs[i].size, b->digests[k]) < 0) {
		snprintf(o->err, sizeof(o->err), "message digest failed");
		return -1;
	}
	if (ms_filter_tokenize(tokens, lm->msgs[i].data, lm->msgs[i].size) < 0 ||
	    batch_add_hashes(b, tokens) < 0) {
		snprintf(o->err, sizeof(o->err), "out of memory");
		return -1;
	}
	o->status = 0;
	b->index[k] = i;
	b->offset[k] = b->nhashes - tokens->count;
	b->msgs[k].count = tokens->count;
	b->count++;
	return 0;
}

/* The next messages into batch b, until it is full. */
static void
batch_prepare(struct learn_many *lm, struct learn_batch *b)
{
	size_t k;

	b->count = 0;
	b->nhashes = 0;
	while (lm->next < lm->count && b->count < LEARN_BATCH && b->nhashes < LEARN_BATCH_TOKENS)
		(void)batch_add(lm, b, lm->next++);
	/* the hashes moved while they grew: pointed to once all are in */
	for (k = 0; k < b->count; k++) {
		b->msgs[k].digest = b->digests[k];
		b->msgs[k].hashes = b->hashes + b->offset[k];
	}
	b->prepared = true;
}

/* While Redis runs a batch's transaction: the next batch. */
static void
learn_overlap(void *context)
{
	struct learn_many *lm = context;

	batch_prepare(lm, lm->preparing);
}

static void
batch_outcomes(struct learn_many *lm, const struct learn_batch *b, int status, const char *err)
{
	struct ms_learn_outcome *o;
	size_t k;

	for (k = 0; k < b->count; k++) {
		o = &lm->outcomes[b->index[k]];
		o->status = status;
		o->result = b->msgs[k].result;
		if (status < 0)
			snprintf(o->err, sizeof(o->err), "%s", err);
	}
}

void
ms_filter_learn_many(struct ms_filter *filter, const char *user, enum ms_class cls,
                     const struct ms_filter_message *msgs, size_t count,
                     struct ms_learn_outcome *outcomes)
{
	struct learn_many lm = {
	        .filter = filter, .msgs = msgs, .outcomes = outcomes, .count = count};
	struct learn_batch *cur = &lm.batches[0], *other = &lm.batches[1], *swap;
	char err[sizeof(outcomes->err)];
	int status;

	batch_prepare(&lm, cur);
	while (cur->count > 0) {
		other->prepared = false;
		lm.preparing = other;
		err[0] = '\0';
		status = ms_store_learn_batch(filter->store, ms_filter_store_user(filter, user),
		                              cls, cur->msgs, cur->count, learn_overlap, &lm, err,
		                              sizeof(err));
		batch_outcomes(&lm, cur, status, err);
		if (!other->prepared)
			batch_prepare(&lm, other);
		swap = cur;
		cur = other;
		other = swap;
	}
	free(lm.batches[0].hashes);
	free(lm.batches[1].hashes);
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
