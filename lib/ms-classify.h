#ifndef MS_CLASSIFY_H
#define MS_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

/* Robinson's f(w) per token and Fisher's chi-square combining (Gary
 * Robinson, "A Statistical Approach to the Spam Problem", 2003), as
 * bogofilter and SpamAssassin's Bayes do it. Pure math: the counts come from
 * the token store. The parameters and the measurements that chose them are
 * in doc/classifier.md. */

struct ms_classify_params {
	double s;                /* strength of the prior (Robinson's s) */
	double x;                /* prior spam probability of a rare token */
	double min_dev;          /* tokens with |f(w) - 0.5| < min_dev take no part */
	unsigned int max_tokens; /* only the most extreme ones; 0 = all */
	/* Tokens that count as one independent observation: sparse word pairs
	 * repeat each word several times, and Fisher's method assumes
	 * independence, so k > 1 divides the chi-square statistics and degrees
	 * of freedom by k. 0 or 1: plain Fisher. */
	double tokens_per_dof;
	/* Weight of a sparse word pair in the combination (other tokens: 1):
	 * a pair repeats the evidence of its two words. 1: no difference. */
	double pair_weight;
	/* Nonzero: header and body tokens (ms-tokenize.h's header bit) are
	 * combined apart, each into its own score, and the message's score is
	 * the mean of the two, so that a header's many correlated tokens (a
	 * mailing list's, a sender's) are one voice out of two, not hundreds of
	 * independent observations. 0: one combination of all tokens. */
	int header_apart;
	/* Nonzero: the body's metatokens (ms-tokenize.h's meta bit: content
	 * types, MIME layout, HTML features, attachments) are a third part,
	 * and the score is the mean of the parts' scores. They too move
	 * together (an HTML mail has 8 or 9), and with the words they were
	 * counted as that many observations. */
	int meta_apart;
	/* Tokens of one part with the same counts (spam and ham sightings)
	 * were most likely learned from the same messages: a sender's own
	 * product names all seen in one spam, a mailing list's header fields
	 * all seen in the same 40. Counted one by one they repeat one piece of
	 * evidence dozens of times, so such a group weighs at most group_max
	 * (its tokens share that weight). 0: no limit. */
	double group_max;
};

extern const struct ms_classify_params ms_classify_defaults;

/* How often a token was seen in learned spam and ham. */
struct ms_token_counts {
	uint32_t spam;
	uint32_t ham;
};

/* Robinson's f(w): the spam probability of one token seen spam/ham times,
 * given nspam/nham learned messages, pulled towards x with strength s. */
double ms_classify_fw(const struct ms_classify_params *params, uint32_t spam, uint32_t ham,
                      uint64_t nspam, uint64_t nham);

/* Upper tail of the chi-square distribution with dof degrees of freedom
 * (dof even, as Fisher's method gives): P(X >= x2). */
double ms_chi2q(double x2, unsigned int dof);

/* Combine the tokens' counts into a spam probability in [0,1] (0.5 when no
 * token says anything). hashes[i] is the token of counts[i] (its pair bit,
 * ms-tokenize.h, decides its weight, its header and meta bits its part), or
 * hashes is NULL: every token weighs 1 and is a body token. Tokens never learned are
 * left out. *used_r gets the number of tokens that took part. Returns 0, or
 * -1 on memory exhaustion. */
int ms_classify(const struct ms_classify_params *params, const struct ms_token_counts *counts,
                const uint64_t *hashes, size_t count, uint64_t nspam, uint64_t nham,
                double *score_r, unsigned int *used_r);

#endif
