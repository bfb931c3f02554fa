#ifndef MS_STORE_H
#define MS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "ms-classify.h"
#include "ms-digest.h"
#include "ms-filter.h"

/* The token store in Redis: the schema of doc/redis-schema.md. Every call
 * makes one round trip (a pipeline or one script), bounded by the timeout;
 * on any trouble it returns -1 with err set, drops the connection and
 * reconnects on the next call. user NULL means the shared statistics. */

/* A user's (or the shared) token counts are one table of 2^table_bits
 * slots of 40 bits in a Redis string, addressed by the top bits of the token
 * hash: see doc/redis-schema.md for why and for the measurements. */
#define MS_STORE_TABLE_BITS_MIN 8
#define MS_STORE_TABLE_BITS_MAX 26

struct ms_store;

/* address: "unix:/path", "/path" or "host:port". read_address: a replica
 * for classification, or NULL/"" to read from address. Never connects. */
struct ms_store *ms_store_create(const char *address, const char *read_address, const char *prefix,
                                 unsigned int table_bits, unsigned int timeout_msecs);
void ms_store_destroy(struct ms_store **store);

struct ms_store_totals {
	uint64_t learned_spam;
	uint64_t learned_ham;
	uint64_t tokens;
};

/* counts[i] for hashes[i] (0/0 if never learned), and the learn totals. */
int ms_store_fetch(struct ms_store *store, const char *user, const uint64_t *hashes, size_t count,
                   struct ms_token_counts *counts, struct ms_store_totals *totals, char *err,
                   size_t errlen);

/* ms_store_fetch in two halves, so that the requests of several messages
 * can be in flight at once (while the caller tokenizes the next one): each
 * send is answered by one receive, in the order sent, with the ticket the
 * send returned. If the connection was lost in between, the receive fails. */
int ms_store_fetch_send(struct ms_store *store, const char *user, const uint64_t *hashes,
                        size_t count, unsigned long *ticket_r, char *err, size_t errlen);
int ms_store_fetch_receive(struct ms_store *store, unsigned long ticket, size_t count,
                           struct ms_token_counts *counts, struct ms_store_totals *totals,
                           char *err, size_t errlen);

/* Learn a message's tokens as cls, atomically, keyed by its digest: see
 * ms_filter_learn() for the results. Each learn also sweeps a slice of the
 * table for expiry. */
int ms_store_learn(struct ms_store *store, const char *user, enum ms_class cls,
                   const unsigned char digest[MS_DIGEST_SIZE], const uint64_t *hashes, size_t count,
                   enum ms_learn_result *result_r, char *err, size_t errlen);

/* One message of ms_store_learn_batch: its result is set when the batch
 * returns 0. */
struct ms_store_learn_msg {
	const unsigned char *digest;
	const uint64_t *hashes;
	size_t count;
	enum ms_learn_result result;
};

/* Learn count messages as cls for one user in one transaction, with the
 * results, counts, counters and digests that ms_store_learn() of each in
 * order would give (a digest repeated in the batch is ALREADY the second
 * time), a slice of expiry sweep per message learned. On failure (-1) none
 * of them is learned. overlap(context), if not NULL, is called once while
 * Redis runs the transaction (not at all if the batch ends before: an error,
 * all ALREADY): the caller prepares its next batch meanwhile. */
typedef void ms_store_overlap_fn(void *context);

int ms_store_learn_batch(struct ms_store *store, const char *user, enum ms_class cls,
                         struct ms_store_learn_msg *msgs, size_t count,
                         ms_store_overlap_fn *overlap, void *context, char *err, size_t errlen);

/* Expiry of rare, stale tokens: visit the next nslots slots; a token seen
 * once in all (spam + ham = 1) and not learned again since the previous
 * visit is deleted. *removed_r gets how many were. */
int ms_store_expire(struct ms_store *store, const char *user, unsigned int nslots,
                    unsigned long long *removed_r, char *err, size_t errlen);

/* Learn totals, token count and Redis used_memory. */
int ms_store_stats(struct ms_store *store, const char *user, struct ms_store_totals *totals,
                   unsigned long long *memory_r, char *err, size_t errlen);

#endif
