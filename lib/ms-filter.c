/* The filter as the delivery path and the learner see it: tokenize, one
 * store round trip, classify. Redis trouble is a verdict (UNKNOWN), never a
 * failure of the caller. */
#include "ms-filter-private.h"
#include "ms-classify.h"
#include "ms-config.h"
#include "ms-log.h"
#include "ms-store.h"
#include "ms-tokenize.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Below this many learned messages of either class the counts say too
 * little: the verdict is UNKNOWN ("not enough training") instead of a guess
 * that could file a user's ham into Junk. */
#define MS_FILTER_MIN_LEARNS 10

struct ms_filter *
ms_filter_create(const struct ms_config *cfg)
{
	struct ms_filter *filter = calloc(1, sizeof(*filter));
	size_t i;

	if (filter == NULL)
		return NULL;
	filter->cfg = cfg;
	filter->store = ms_store_create(cfg->redis, cfg->redis_read, cfg->redis_prefix,
	                                cfg->token_table_bits, cfg->redis_timeout_msecs);
	if (filter->store == NULL) {
		free(filter);
		return NULL;
	}
	for (i = 0; i < MS_FILTER_INFLIGHT; i++)
		ms_tokens_init(&filter->inflight[i].tokens);
	return filter;
}

void
ms_filter_destroy(struct ms_filter **filterp)
{
	struct ms_filter *filter = *filterp;
	size_t i;

	if (filter == NULL)
		return;
	ms_store_destroy(&filter->store);
	for (i = 0; i < MS_FILTER_INFLIGHT; i++)
		ms_tokens_free(&filter->inflight[i].tokens);
	free(filter->counts);
	free(filter);
	*filterp = NULL;
}

/* per_user = no: everyone shares one set of statistics */
const char *
ms_filter_store_user(const struct ms_filter *filter, const char *user)
{
	return filter->cfg->per_user ? user : NULL;
}

int
ms_filter_tokenize(struct ms_tokens *tokens, const unsigned char *msg, size_t size)
{
	tokens->count = 0;
	return ms_tokenize_message(msg, size, tokens);
}

static int
reserve_counts(struct ms_filter *filter, size_t count)
{
	struct ms_token_counts *counts;

	if (count <= filter->counts_capacity)
		return 0;
	if ((counts = realloc(filter->counts, count * sizeof(*counts))) == NULL)
		return -1;
	filter->counts = counts;
	filter->counts_capacity = count;
	return 0;
}

static void __attribute__((format(printf, 2, 3)))
set_unknown(struct ms_verdict *verdict, const char *fmt, ...)
{
	va_list args;

	verdict->status = MS_VERDICT_UNKNOWN;
	verdict->spam = false;
	va_start(args, fmt);
	vsnprintf(verdict->reason, sizeof(verdict->reason), fmt, args);
	va_end(args);
}

/* Tokenize a message and send its request without waiting for the answer. */
static void
classify_send(struct ms_filter *filter, const char *user, const struct ms_filter_message *msg,
              struct inflight *f, struct ms_verdict *verdict)
{
	char err[256];

	memset(verdict, 0, sizeof(*verdict));
	verdict->score = 0.5;
	f->sent = false;
	/* counts only grow: reserved now, they fit when the answer comes */
	if (ms_filter_tokenize(&f->tokens, msg->data, msg->size) < 0 ||
	    reserve_counts(filter, f->tokens.count) < 0) {
		set_unknown(verdict, "out of memory");
		return;
	}
	if (ms_store_fetch_send(filter->store, ms_filter_store_user(filter, user), f->tokens.hashes,
	                        f->tokens.count, &f->ticket, err, sizeof(err)) < 0) {
		ms_log_warning("filter: %s: message not filtered", err);
		set_unknown(verdict, "redis unavailable");
		return;
	}
	f->sent = true;
}

/* Past this share of its slots in use (percent), tokens share slots often
 * enough to blur their counts: the ranking is about a fifth worse at a load
 * of 0.2-0.4 (doc/redis-schema.md, "Sizing the table"). A learned table
 * cannot grow, so the administrator hears of it from the log, once per
 * process, before the users notice. */
#define MS_FILTER_CROWDED_PERCENT 15

static void
warn_crowded(struct ms_filter *filter, const struct ms_store_totals *totals)
{
	uint64_t slots = (uint64_t)1 << filter->cfg->token_table_bits;

	if (filter->warned_crowded || totals->tokens * 100 < slots * MS_FILTER_CROWDED_PERCENT)
		return;
	filter->warned_crowded = true;
	ms_log_warning("filter: token table %llu%% full (%llu of %llu slots in use): scores "
	               "lose accuracy as it fills; a store learned anew with a larger "
	               "token_table_bits holds more (README)",
	               (unsigned long long)(totals->tokens * 100 / slots),
	               (unsigned long long)totals->tokens, (unsigned long long)slots);
}

/* Read the answer to a request sent by classify_send, and score. */
static void
classify_finish(struct ms_filter *filter, struct inflight *f, struct ms_verdict *verdict)
{
	struct ms_store_totals totals;
	char err[256];
	double score;
	unsigned int used;

	if (!f->sent)
		return;
	f->sent = false;
	if (ms_store_fetch_receive(filter->store, f->ticket, f->tokens.count, filter->counts,
	                           &totals, err, sizeof(err)) < 0) {
		ms_log_warning("filter: %s: message not filtered", err);
		set_unknown(verdict, "redis unavailable");
		return;
	}
	if (totals.learned_spam < MS_FILTER_MIN_LEARNS ||
	    totals.learned_ham < MS_FILTER_MIN_LEARNS) {
		set_unknown(verdict, "not enough training");
		return;
	}
	warn_crowded(filter, &totals);
	if (ms_classify(&ms_classify_defaults, filter->counts, f->tokens.hashes, f->tokens.count,
	                totals.learned_spam, totals.learned_ham, &score, &used) < 0) {
		set_unknown(verdict, "out of memory");
		return;
	}
	verdict->status = MS_VERDICT_OK;
	verdict->score = score;
	verdict->ntokens = used;
	verdict->spam = score >= filter->cfg->spam_threshold;
}

/* After a big message, give its arrays back instead of keeping them for
 * the next one: most mail makes a few thousand tokens at most. */
#define MS_FILTER_KEEP_TOKENS 4096

void
ms_filter_trim(struct ms_filter *filter)
{
	size_t i;

	for (i = 0; i < MS_FILTER_INFLIGHT; i++) {
		if (filter->inflight[i].tokens.capacity > MS_FILTER_KEEP_TOKENS)
			ms_tokens_free(&filter->inflight[i].tokens);
	}
	if (filter->counts_capacity > MS_FILTER_KEEP_TOKENS) {
		free(filter->counts);
		filter->counts = NULL;
		filter->counts_capacity = 0;
	}
}

void
ms_filter_classify_many(struct ms_filter *filter, const char *user,
                        const struct ms_filter_message *msgs, size_t count,
                        struct ms_verdict *verdicts)
{
	size_t i;

	if (count == 0)
		return;
	classify_send(filter, user, &msgs[0], &filter->inflight[0], &verdicts[0]);
	for (i = 0; i < count; i++) {
		if (i + 1 < count)
			classify_send(filter, user, &msgs[i + 1],
			              &filter->inflight[(i + 1) % MS_FILTER_INFLIGHT],
			              &verdicts[i + 1]);
		classify_finish(filter, &filter->inflight[i % MS_FILTER_INFLIGHT], &verdicts[i]);
	}
	ms_filter_trim(filter);
}

void
ms_filter_classify(struct ms_filter *filter, const char *user, const unsigned char *msg,
                   size_t size, struct ms_verdict *verdict)
{
	struct ms_filter_message m = {.data = msg, .size = size};

	ms_filter_classify_many(filter, user, &m, 1, verdict);
}

int
ms_filter_stats(struct ms_filter *filter, const char *user, struct ms_filter_stats *stats,
                char *err, size_t errlen)
{
	struct ms_store_totals totals;
	unsigned long long memory;

	if (ms_store_stats(filter->store, ms_filter_store_user(filter, user), &totals, &memory, err,
	                   errlen) < 0)
		return -1;
	stats->learned_spam = totals.learned_spam;
	stats->learned_ham = totals.learned_ham;
	stats->tokens = totals.tokens;
	stats->table_slots = 1ULL << filter->cfg->token_table_bits;
	stats->memory_bytes = memory;
	return 0;
}
