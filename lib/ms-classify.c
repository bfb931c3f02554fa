#include "ms-classify.h"

#include "ms-tokenize.h"

#include <math.h>
#include <stdlib.h>

/* Chosen by cross-validation inside the training half of the standard
 * split (bench/accuracy --tune); see doc/classifier.md. */
const struct ms_classify_params ms_classify_defaults = {
        .s = 0.2,
        .x = 0.55,
        .min_dev = 0.40,
        .max_tokens = 0,
        .tokens_per_dof = 16,
        .pair_weight = 0.5,
        .header_apart = 1,
        .meta_apart = 1,
        .group_max = 3,
};

double
ms_classify_fw(const struct ms_classify_params *params, uint32_t spam, uint32_t ham, uint64_t nspam,
               uint64_t nham)
{
	double spam_ratio, ham_ratio, p, n = (double)spam + (double)ham;

	if (n == 0.0)
		return params->x;
	/* Normalize by the learn counts: a corpus with three times more ham
	 * than spam must not make every token look hammy. */
	spam_ratio = nspam > 0 ? (double)spam / (double)nspam : 0.0;
	ham_ratio = nham > 0 ? (double)ham / (double)nham : 0.0;
	if (spam_ratio + ham_ratio == 0.0)
		return params->x;
	p = spam_ratio / (spam_ratio + ham_ratio);
	return (params->s * params->x + n * p) / (params->s + n);
}

/* Q(x2, 2n) = e^-m * sum(i < n) m^i / i!, m = x2 / 2. The terms are summed
 * relative to the largest one so that neither e^-m nor m^i under- or
 * overflows when a message has thousands of tokens. */
double
ms_chi2q(double x2, unsigned int dof)
{
	unsigned int n = dof / 2, k, i;
	double m = x2 / 2.0, sum = 1.0, term, log_peak;

	if (n == 0)
		return 0.0;
	if (m <= 0.0)
		return 1.0;
	k = m < (double)(n - 1) ? (unsigned int)m : n - 1;
	log_peak = -m + (double)k * log(m) - lgamma((double)k + 1.0);
	term = 1.0;
	for (i = k; i > 0; i--) {
		term *= (double)i / m;
		sum += term;
		if (term < sum * 1e-17)
			break;
	}
	term = 1.0;
	for (i = k + 1; i < n; i++) {
		term *= m / (double)i;
		sum += term;
		if (term < sum * 1e-17)
			break;
	}
	term = exp(log_peak + log(sum));
	return term > 1.0 ? 1.0 : term;
}

struct evidence {
	double f, weight;
	uint32_t spam, ham; /* the counts: tokens with the same ones form a group */
	unsigned int part;  /* PART_BODY, PART_HEADER or PART_META */
};

enum { PART_BODY, PART_HEADER, PART_META, PARTS };

/* Fisher's method on one part's tokens: the sums it needs */
struct fisher {
	double sum_ln_f, sum_ln_1mf, weight;
};

static double
deviation(double f)
{
	return fabs(f - 0.5);
}

static int
cmp_deviation_desc(const void *a, const void *b)
{
	double da = deviation(((const struct evidence *)a)->f),
	       db = deviation(((const struct evidence *)b)->f);

	return da < db ? 1 : da > db ? -1 : 0;
}

static int
cmp_group(const void *a, const void *b)
{
	const struct evidence *x = a, *y = b;

	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	if (x->spam != y->spam)
		return x->spam < y->spam ? -1 : 1;
	return x->ham < y->ham ? -1 : x->ham > y->ham;
}

/* one group: the run of tokens from start with start's part and counts */
static size_t
group_end(const struct evidence *ev, size_t used, size_t start, double *weight_r)
{
	size_t end;

	*weight_r = 0.0;
	for (end = start; end < used && cmp_group(&ev[start], &ev[end]) == 0; end++)
		*weight_r += ev[end].weight;
	return end;
}

static void
weigh_groups(const struct ms_classify_params *params, struct evidence *ev, size_t used)
{
	size_t start, end, i;
	double weight;

	if (params->group_max <= 0.0)
		return;
	qsort(ev, used, sizeof(*ev), cmp_group);
	for (start = 0; start < used; start = end) {
		end = group_end(ev, used, start, &weight);
		for (i = start; weight > params->group_max && i < end; i++)
			ev[i].weight *= params->group_max / weight;
	}
}

static unsigned int
token_part(const struct ms_classify_params *params, uint64_t hash)
{
	if (params->header_apart && ms_token_is_header(hash))
		return PART_HEADER;
	if (params->meta_apart && ms_token_is_meta(hash))
		return PART_META;
	return PART_BODY;
}

/* a weighted token is that fraction of an observation: Fisher's statistic
 * and its degrees of freedom count weight, not tokens */
static double
fisher_score(const struct ms_classify_params *params, const struct fisher *fi)
{
	double k = params->tokens_per_dof > 1.0 ? params->tokens_per_dof : 1.0, h, s;
	unsigned int dof = 2 * (unsigned int)ceil(fi->weight / k);

	h = ms_chi2q(-2.0 * fi->sum_ln_f / k, dof);
	s = ms_chi2q(-2.0 * fi->sum_ln_1mf / k, dof);
	return (1.0 + h - s) / 2.0;
}

int
ms_classify(const struct ms_classify_params *params, const struct ms_token_counts *counts,
            const uint64_t *hashes, size_t count, uint64_t nspam, uint64_t nham, double *score_r,
            unsigned int *used_r)
{
	struct fisher parts[PARTS] = {{0.0, 0.0, 0.0}, {0.0, 0.0, 0.0}, {0.0, 0.0, 0.0}};
	double f, sum = 0.0;
	struct evidence *ev;
	size_t i, used = 0;
	unsigned int p, scored = 0;

	*score_r = 0.5;
	*used_r = 0;
	if (count == 0)
		return 0;
	if ((ev = malloc(count * sizeof(*ev))) == NULL)
		return -1;
	for (i = 0; i < count; i++) {
		if (counts[i].spam == 0 && counts[i].ham == 0)
			continue;
		f = ms_classify_fw(params, counts[i].spam, counts[i].ham, nspam, nham);
		if (deviation(f) < params->min_dev)
			continue;
		ev[used].f = f;
		ev[used].spam = counts[i].spam;
		ev[used].ham = counts[i].ham;
		ev[used].weight =
		        hashes != NULL && ms_token_is_pair(hashes[i]) ? params->pair_weight : 1.0;
		ev[used++].part = token_part(params, hashes != NULL ? hashes[i] : 0);
	}
	if (params->max_tokens > 0 && used > params->max_tokens) {
		qsort(ev, used, sizeof(*ev), cmp_deviation_desc);
		used = params->max_tokens;
	}
	weigh_groups(params, ev, used);
	for (i = 0; i < used; i++) {
		struct fisher *fi = &parts[ev[i].part];

		/* s > 0 keeps f inside (0,1); the clamp only guards s = 0 */
		f = fmin(fmax(ev[i].f, 1e-12), 1.0 - 1e-12);
		fi->sum_ln_f += ev[i].weight * log(f);
		fi->sum_ln_1mf += ev[i].weight * log(1.0 - f);
		fi->weight += ev[i].weight;
	}
	free(ev);
	/* a part without evidence (no header token counted, say) does not
	 * pull the others' score towards 0.5 */
	for (p = 0; p < PARTS; p++) {
		if (parts[p].weight > 0.0) {
			sum += fisher_score(params, &parts[p]);
			scored++;
		}
	}
	if (scored == 0)
		return 0;
	*score_r = sum / (double)scored;
	*used_r = (unsigned int)used;
	return 0;
}
