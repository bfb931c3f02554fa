#ifndef MS_FILTER_PRIVATE_H
#define MS_FILTER_PRIVATE_H

/* Shared by ms-filter.c (classify, stats) and ms-filter-learn.c. */
#include "ms-filter.h"
#include "ms-tokenize.h"

#include <stdbool.h>

/* ms_filter_classify_many keeps two messages in flight: one waiting for
 * Redis's answer while the next is tokenized (doc/redis-schema.md). */
#define MS_FILTER_INFLIGHT 2

struct inflight {
	struct ms_tokens tokens;
	unsigned long ticket; /* of the store's request */
	bool sent;
};

struct ms_filter {
	const struct ms_config *cfg;
	struct ms_store *store;
	struct inflight inflight[MS_FILTER_INFLIGHT];
	struct ms_token_counts *counts;
	size_t counts_capacity;
	bool warned_crowded; /* the table-fullness warning is out (ms-filter.c) */
};

/* Tokenize msg into tokens. Returns 0, or -1 when out of memory. */
int ms_filter_tokenize(struct ms_tokens *tokens, const unsigned char *msg, size_t size);
/* The statistics' owner for user: NULL (shared) unless per_user. */
const char *ms_filter_store_user(const struct ms_filter *filter, const char *user);
/* Free the token arrays if a big message grew them. */
void ms_filter_trim(struct ms_filter *filter);

#endif
