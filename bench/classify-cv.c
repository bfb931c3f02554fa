/* bench/accuracy --tune: cross-validation inside the TRAINING half of the
 * standard split (../shared/corpus/README.md), in memory; the test half is
 * never read. The training half is tokenized once and counted in a table
 * laid out like the token store's (one slot per top TABLE_BITS bits of the
 * hash, so colliding tokens share counts as they do in Redis). For each of K
 * interleaved folds the fold is taken out of the counts, its messages'
 * counts are kept as a model that never saw them would fetch them, and the
 * fold is put back. Two partitions, 10 and 5 folds, so that a choice must
 * hold for both. Then, over a grid of lib/ms-classify parameters, and for
 * the compiled-in defaults in detail: the score distribution, (1-ROCA)%,
 * missed spam at <= 0.1% false positives, the mean missed spam over 0 to
 * 1% false positives (the operating region of a filter that files mail
 * away), and the spam_threshold that keeps the false positives at or under
 * 0.1% in both partitions. doc/classifier.md has the figures.
 * usage: classify-cv CORPUS [EVERY [DRAW]]  (the spamassassin/ folder;
 * EVERY > 1 keeps only every EVERY-th training message, to see a smaller
 * site, starting from the DRAW-th, 0 <= DRAW < EVERY: EVERY draws of that
 * size, disjoint, and one draw alone is a noisy sample of it)
 * environment: MS_TUNE_NO_GRID=1 skips the grid; MS_TUNE_SHOW=N names the N
 * highest-scoring ham and lowest-scoring spam of each partition;
 * MS_TUNE_HEADER_APART=0 measures (grid included) one combination of header
 * and body tokens instead of the default two; MS_TUNE_META_APART=0 leaves
 * the metatokens in the body's part. */
#include "ms-classify.h"
#include "ms-tokenize.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the token store's default token_table_bits */
#define TABLE_BITS   22
#define FP_RATE      0.001 /* the false-positive goal: 0.1% */
#define PAUC_FP_RATE 0.01  /* the region the objective averages over */

struct message {
	const char *path;
	uint64_t *hashes;
	size_t count;
	int is_spam;
};

/* one message as a model that did not learn it sees it */
struct heldout {
	const char *path;
	struct ms_token_counts *counts;
	uint64_t *hashes; /* of counts[i]: the classifier weighs pairs apart */
	size_t count;
	uint64_t nspam, nham;
	int is_spam;
	double score;
};

struct partition {
	unsigned int folds;
	struct heldout *msgs;
	size_t n, nspam, nham;
};

struct metrics {
	double roca, pauc;
	size_t fn_at_goal, allowed;
	double cut; /* the score of the first ham that may not be passed */
};

static struct ms_token_counts table[(size_t)1 << TABLE_BITS];
/* the defaults, or with MS_TUNE_HEADER_APART=0 / MS_TUNE_META_APART=0 the
 * classifier before header, body and metatokens were scored apart */
static struct ms_classify_params tuned;

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static struct ms_token_counts *
slot(uint64_t hash)
{
	return &table[hash >> (64 - TABLE_BITS)];
}

static int
cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
cmp_score(const void *a, const void *b)
{
	double x = ((const struct heldout *)a)->score, y = ((const struct heldout *)b)->score;

	return x < y ? -1 : x > y;
}

static char **
list_class(const char *top, const char *const *dirs, size_t *count_r)
{
	char **paths = NULL, path[8192];
	struct dirent *de;
	size_t count = 0;
	DIR *d;

	for (; *dirs != NULL; dirs++) {
		snprintf(path, sizeof(path), "%s/%s", top, *dirs);
		if ((d = opendir(path)) == NULL)
			die(path);
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if ((paths = realloc(paths, (count + 1) * sizeof(*paths))) == NULL ||
			    (paths[count] = malloc(strlen(*dirs) + strlen(de->d_name) + 2)) == NULL)
				die("malloc");
			sprintf(paths[count++], "%s/%s", *dirs, de->d_name);
		}
		closedir(d);
	}
	qsort(paths, count, sizeof(*paths), cmp_path);
	*count_r = count;
	return paths;
}

static void
tokenize_file(const char *top, const char *rel, struct message *m)
{
	struct ms_tokens tokens;
	unsigned char *data;
	char path[8192];
	long size;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 ||
	    (data = malloc((size_t)size + 1)) == NULL)
		die(path);
	rewind(f);
	size = (long)fread(data, 1, (size_t)size, f);
	fclose(f);
	ms_tokens_init(&tokens);
	if (ms_tokenize_message(data, (size_t)size, &tokens) < 0)
		die("tokenize");
	free(data);
	m->hashes = tokens.hashes; /* the message keeps the array */
	m->count = tokens.count;
}

static void
count(const struct message *m, int delta, uint64_t learned[2])
{
	size_t i;

	for (i = 0; i < m->count; i++) {
		struct ms_token_counts *c = slot(m->hashes[i]);

		if (m->is_spam)
			c->spam = (uint32_t)((int64_t)c->spam + delta);
		else
			c->ham = (uint32_t)((int64_t)c->ham + delta);
	}
	learned[m->is_spam] = (uint64_t)((int64_t)learned[m->is_spam] + delta);
}

static void
hold_out(const struct message *m, const uint64_t learned[2], struct heldout *h)
{
	size_t i;

	h->path = m->path;
	h->is_spam = m->is_spam;
	h->nspam = learned[1];
	h->nham = learned[0];
	h->count = 0;
	if ((h->counts = calloc(m->count + 1, sizeof(*h->counts))) == NULL ||
	    (h->hashes = calloc(m->count + 1, sizeof(*h->hashes))) == NULL)
		die("calloc");
	for (i = 0; i < m->count; i++) {
		const struct ms_token_counts *c = slot(m->hashes[i]);

		if (c->spam + c->ham > 0) {
			h->hashes[h->count] = m->hashes[i];
			h->counts[h->count++] = *c;
		}
	}
}

/* fold of a message: its position in its class, modulo K, so that every
 * fold holds both classes in proportion */
static void
cross_validate(struct message *msgs, size_t n, uint64_t learned[2], struct partition *p)
{
	size_t i, f, pos[2];
	int pass;

	p->n = 0;
	p->nspam = p->nham = 0;
	if ((p->msgs = calloc(n, sizeof(*p->msgs))) == NULL)
		die("calloc");
	for (f = 0; f < p->folds; f++) {
		for (pass = 0; pass < 3; pass++) {
			pos[0] = pos[1] = 0;
			for (i = 0; i < n; i++) {
				if (pos[msgs[i].is_spam]++ % p->folds != f)
					continue;
				if (pass == 1) {
					hold_out(&msgs[i], learned, &p->msgs[p->n++]);
					msgs[i].is_spam ? p->nspam++ : p->nham++;
				} else {
					count(&msgs[i], pass == 0 ? -1 : 1, learned);
				}
			}
		}
	}
}

static void
score_all(const struct ms_classify_params *params, struct partition *p)
{
	unsigned int used;
	size_t i;

	for (i = 0; i < p->n; i++) {
		struct heldout *h = &p->msgs[i];

		if (ms_classify(params, h->counts, h->hashes, h->count, h->nspam, h->nham,
		                &h->score, &used) < 0)
			die("classify");
	}
	qsort(p->msgs, p->n, sizeof(*p->msgs), cmp_score);
}

/* Spam missed when a threshold just above the (allowed+1)-th highest ham
 * lets at most `allowed` ham through (ties with that ham count as missed).
 * p->msgs sorted by score. */
static size_t
missed_at(const struct partition *p, size_t allowed, double *cut_r)
{
	size_t i, seen = 0, missed = 0;
	double cut = 1.0;

	for (i = p->n; i-- > 0;) {
		if (!p->msgs[i].is_spam && seen++ == allowed) {
			cut = p->msgs[i].score;
			break;
		}
	}
	for (i = 0; i < p->n && p->msgs[i].score <= cut; i++)
		missed += p->msgs[i].is_spam;
	if (cut_r != NULL)
		*cut_r = cut;
	return missed;
}

static double
one_minus_roca(const struct partition *p)
{
	double good = 0.0, hams_below = 0.0;
	size_t i = 0, j;

	while (i < p->n) {
		double ham_ties = 0.0, spam_ties = 0.0;

		for (j = i; j < p->n && p->msgs[j].score == p->msgs[i].score; j++)
			p->msgs[j].is_spam ? spam_ties++ : ham_ties++;
		good += spam_ties * (hams_below + ham_ties / 2.0);
		hams_below += ham_ties;
		i = j;
	}
	return 100.0 * (1.0 - good / ((double)p->nspam * (double)p->nham));
}

static void
measure(const struct ms_classify_params *params, struct partition *p, struct metrics *m)
{
	size_t a, upto = (size_t)((double)p->nham * PAUC_FP_RATE), sum = 0;

	score_all(params, p);
	m->roca = one_minus_roca(p);
	m->allowed = (size_t)((double)p->nham * FP_RATE);
	m->fn_at_goal = missed_at(p, m->allowed, &m->cut);
	for (a = 0; a <= upto; a++)
		sum += missed_at(p, a, NULL);
	m->pauc = (double)sum / (double)(upto + 1);
}

static void
distribution(struct partition *p)
{
	static const double cuts[] = {0.1, 0.2, 0.3,  0.4,  0.5,   0.6, 0.7,
	                              0.8, 0.9, 0.95, 0.99, 0.999, 1.01};
	size_t i, c, shown = 0;

	printf("%u-fold score distribution (defaults): score below | spam | ham\n", p->folds);
	for (c = 0; c < sizeof(cuts) / sizeof(*cuts); c++) {
		size_t spam = 0, ham = 0;

		for (i = 0; i < p->n; i++) {
			if (p->msgs[i].score < cuts[c] &&
			    (c == 0 || p->msgs[i].score >= cuts[c - 1]))
				p->msgs[i].is_spam ? spam++ : ham++;
		}
		printf("  %g | %zu | %zu\n", cuts[c] > 1 ? 1.0 : cuts[c], spam, ham);
	}
	printf("  top ham scores:");
	for (i = p->n; i-- > 0 && shown < 12;) {
		if (!p->msgs[i].is_spam) {
			printf(" %.4f", p->msgs[i].score);
			shown++;
		}
	}
	printf("\n");
}

/* MS_TUNE_SHOW=N: the N highest-scoring ham and the N lowest-scoring spam
 * by name, to look at what the filter gets wrong. */
static void
show_worst(const struct partition *p, size_t n)
{
	size_t i, shown = 0;

	for (i = p->n; i-- > 0 && shown < n;) {
		if (!p->msgs[i].is_spam) {
			printf("  ham  %.4f %s\n", p->msgs[i].score, p->msgs[i].path);
			shown++;
		}
	}
	for (i = 0, shown = 0; i < p->n && shown < n; i++) {
		if (p->msgs[i].is_spam) {
			printf("  spam %.4f %s\n", p->msgs[i].score, p->msgs[i].path);
			shown++;
		}
	}
}

static void
grid_point(const struct ms_classify_params *p, struct partition *parts, size_t nparts,
           double *pauc_r)
{
	struct metrics m;
	size_t i;

	printf("%g %g %g %u %g %g %g |", p->s, p->x, p->min_dev, p->max_tokens, p->tokens_per_dof,
	       p->pair_weight, p->group_max);
	*pauc_r = 0.0;
	for (i = 0; i < nparts; i++) {
		measure(p, &parts[i], &m);
		printf(" %.4f / %zu / %.1f", m.roca, m.fn_at_goal, m.pauc);
		*pauc_r += m.pauc / (double)nparts;
	}
	printf(" | %.1f\n", *pauc_r);
}

/* the weight limit of same-count tokens, the other parameters at their
 * defaults (0: no limit) */
static void
grid_groups(struct partition *parts, size_t nparts)
{
	static const double gmax[] = {0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0};
	struct ms_classify_params p;
	double pauc;
	size_t a;

	for (a = 0; a < sizeof(gmax) / sizeof(*gmax); a++) {
		p = tuned;
		p.group_max = gmax[a];
		grid_point(&p, parts, nparts, &pauc);
	}
}

static void
grid(struct partition *parts, size_t nparts)
{
	/* the defaults must be a point of the grid: bench/accuracy ranks it
	 * by its ratios to them */
	static const double gs[] = {0.1, 0.2, 0.3, 0.5, 1.0}, gx[] = {0.5, 0.55},
	                    gdev[] = {0.375, 0.4, 0.42, 0.44, 0.46}, gk[] = {4, 8, 16, 32},
	                    gpw[] = {1.0, 0.5, 0.25, 0.125};
	struct ms_classify_params p, best = tuned;
	double best_pauc = 1e9;
	size_t a, b, c, e, w;

	printf("grid: s x min_dev max_tokens k pair_weight group_max | per partition: "
	       "(1-ROCA)%% / missed at <= 0.1%% FP / mean missed over 0-1%% FP | mean of the "
	       "last\n");
	for (a = 0; a < sizeof(gs) / sizeof(*gs); a++)
		for (b = 0; b < 2; b++)
			for (c = 0; c < 5; c++)
				for (e = 0; e < 4; e++)
					for (w = 0; w < 4; w++) {
						double pauc;

						p = tuned;
						p.s = gs[a], p.x = gx[b], p.min_dev = gdev[c];
						p.max_tokens = 0, p.tokens_per_dof = gk[e];
						p.pair_weight = gpw[w];
						grid_point(&p, parts, nparts, &pauc);
						if (pauc < best_pauc) {
							best_pauc = pauc;
							best = p;
						}
					}
	printf("lowest mean missed over 0-1%% FP: s=%g x=%g min_dev=%g max_tokens=%u k=%g "
	       "pair_weight=%g (%.1f)\n",
	       best.s, best.x, best.min_dev, best.max_tokens, best.tokens_per_dof, best.pair_weight,
	       best_pauc);
	grid_groups(parts, nparts);
}

/* The defaults in detail, and the threshold: the lowest score, rounded up
 * to 0.01, at which no partition lets more than 0.1% of its ham through. */
static void
defaults(struct partition *parts, size_t nparts)
{
	double threshold = 0.0;
	struct metrics m;
	size_t i, j;

	printf("defaults: s=%g x=%g min_dev=%g max_tokens=%u k=%g pair_weight=%g group_max=%g "
	       "header_apart=%d meta_apart=%d\n",
	       tuned.s, tuned.x, tuned.min_dev, tuned.max_tokens, tuned.tokens_per_dof,
	       tuned.pair_weight, tuned.group_max, tuned.header_apart, tuned.meta_apart);
	for (i = 0; i < nparts; i++) {
		measure(&tuned, &parts[i], &m);
		if (i == 0)
			distribution(&parts[i]);
		if (getenv("MS_TUNE_SHOW") != NULL)
			show_worst(&parts[i], strtoul(getenv("MS_TUNE_SHOW"), NULL, 10));
		printf("%u folds: (1-ROCA)%% %.4f, missed at <= 0.1%% FP (%zu of %zu ham) %zu, "
		       "cut %.4f, mean missed over 0-1%% FP %.1f\n",
		       parts[i].folds, m.roca, m.allowed, parts[i].nham, m.fn_at_goal, m.cut,
		       m.pauc);
		if (m.cut > threshold)
			threshold = m.cut;
	}
	threshold = ceil(threshold * 100.0 + 1e-9) / 100.0;
	printf("spam_threshold %.2f (FP <= 0.1%% in every partition):", threshold);
	for (i = 0; i < nparts; i++) {
		size_t fp = 0, fn = 0;

		score_all(&tuned, &parts[i]);
		for (j = 0; j < parts[i].n; j++) {
			if (parts[i].msgs[j].is_spam)
				fn += parts[i].msgs[j].score < threshold;
			else
				fp += parts[i].msgs[j].score >= threshold;
		}
		printf(" %u folds %zu FP / %zu missed;", parts[i].folds, fp, fn);
	}
	printf("\n");
}

int
main(int argc, char **argv)
{
	static const char *const ham_dirs[] = {"easy_ham", "easy_ham_2", "hard_ham", NULL};
	static const char *const spam_dirs[] = {"spam", "spam_2", NULL};
	struct partition parts[2] = {{.folds = 10}, {.folds = 5}};
	const char *const *dirs[2] = {ham_dirs, spam_dirs};
	struct message *msgs = NULL;
	uint64_t learned[2] = {0, 0};
	size_t i, n = 0, nfiles, every = argc > 2 ? strtoul(argv[2], NULL, 10) : 1,
	          draw = argc > 3 ? strtoul(argv[3], NULL, 10) : 0;
	const char *top;
	char **paths;
	int cls;

	if (argc < 2 || argc > 4 || every < 1 || draw >= every) {
		fprintf(stderr, "usage: classify-cv CORPUS [EVERY [DRAW]]\n");
		return 1;
	}
	top = argv[1];
	tuned = ms_classify_defaults;
	if (getenv("MS_TUNE_HEADER_APART") != NULL)
		tuned.header_apart = atoi(getenv("MS_TUNE_HEADER_APART"));
	if (getenv("MS_TUNE_META_APART") != NULL)
		tuned.meta_apart = atoi(getenv("MS_TUNE_META_APART"));
	for (cls = 0; cls < 2; cls++) {
		paths = list_class(top, dirs[cls], &nfiles);
		if ((msgs = realloc(msgs, (n + nfiles / 2 + 1) * sizeof(*msgs))) == NULL)
			die("realloc");
		/* the training half: even positions */
		for (i = 2 * draw; i < nfiles; i += 2 * every, n++) {
			tokenize_file(top, paths[i], &msgs[n]);
			msgs[n].path = paths[i];
			msgs[n].is_spam = cls;
			count(&msgs[n], 1, learned);
		}
	}
	printf("training half: %llu spam, %llu ham; cross-validation with 10 and 5 folds\n",
	       (unsigned long long)learned[1], (unsigned long long)learned[0]);
	for (i = 0; i < 2; i++)
		cross_validate(msgs, n, learned, &parts[i]);
	defaults(parts, 2);
	if (getenv("MS_TUNE_NO_GRID") == NULL)
		grid(parts, 2);
	return 0;
}
