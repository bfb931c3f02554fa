/* bench/accuracy's driver for mailsift: learn and classify lists of message
 * files through libmailsift (the same ms_filter calls as delivery and the
 * learner), timed with the messages already in memory; and "tune", which
 * fetches every message's token counts once and scores them under a grid of
 * classifier parameters (doc/classifier.md). Not installed, not a test. */
#include "ms-classify.h"
#include "ms-config.h"
#include "ms-filter.h"
#include "ms-log.h"
#include "ms-store.h"
#include "ms-tokenize.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct message {
	char *path;
	unsigned char *data;
	size_t size;
};

struct message_list {
	struct message *items;
	size_t count;
};

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
	exit(1);
}

static unsigned char *
read_file(const char *path, size_t *size_r)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *data = NULL;
	long size;

	if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) != 0 || (data = malloc((size_t)size + 1)) == NULL ||
	    fread(data, 1, (size_t)size, fp) != (size_t)size)
		die("%s: cannot read", path);
	fclose(fp);
	*size_r = (size_t)size;
	return data;
}

static void
load_list(const char *list_path, struct message_list *list)
{
	FILE *fp = fopen(list_path, "r");
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	ssize_t len;

	if (fp == NULL)
		die("%s: cannot open", list_path);
	memset(list, 0, sizeof(*list));
	while ((len = getline(&line, &cap, fp)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (list->count == alloc) {
			alloc = alloc == 0 ? 1024 : alloc * 2;
			list->items = realloc(list->items, alloc * sizeof(*list->items));
			if (list->items == NULL)
				die("out of memory");
		}
		list->items[list->count].path = strdup(line);
		list->items[list->count].data = read_file(line, &list->items[list->count].size);
		list->count++;
	}
	free(line);
	fclose(fp);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmd_learn(struct ms_filter *filter, const char *cls_name, const char *list_path)
{
	struct message_list list;
	enum ms_learn_result result;
	enum ms_class cls;
	char err[256];
	double start;
	size_t i;

	if (strcmp(cls_name, "spam") == 0)
		cls = MS_CLASS_SPAM;
	else if (strcmp(cls_name, "ham") == 0)
		cls = MS_CLASS_HAM;
	else
		die("learn: class must be spam or ham");
	load_list(list_path, &list);
	start = now();
	for (i = 0; i < list.count; i++) {
		if (ms_filter_learn(filter, NULL, cls, list.items[i].data, list.items[i].size,
		                    &result, err, sizeof(err)) < 0)
			die("%s: %s", list.items[i].path, err);
	}
	printf("learn %s: %zu messages in %.3f s\n", cls_name, list.count, now() - start);
	return 0;
}

static int
cmd_classify(struct ms_filter *filter, const char *list_path)
{
	struct message_list list;
	struct ms_verdict *verdicts;
	double start, secs;
	size_t i;

	load_list(list_path, &list);
	if ((verdicts = calloc(list.count + 1, sizeof(*verdicts))) == NULL)
		die("out of memory");
	start = now();
	for (i = 0; i < list.count; i++)
		ms_filter_classify(filter, NULL, list.items[i].data, list.items[i].size,
		                   &verdicts[i]);
	secs = now() - start;
	for (i = 0; i < list.count; i++) {
		printf("%s\t%.6f\t%s\n", list.items[i].path, verdicts[i].score,
		       verdicts[i].status != MS_VERDICT_OK ? "unknown"
		       : verdicts[i].spam                  ? "spam"
		                                           : "ham");
	}
	fprintf(stderr, "classify: %zu messages in %.3f s\n", list.count, secs);
	return 0;
}

/* --- tune: score fixed token counts under many parameter sets --- */

struct counted {
	struct ms_token_counts *counts;
	size_t count;
	int is_spam;
	double score;
};

static void
fetch_counts(struct ms_store *store, const struct message_list *list, int is_spam,
             struct counted *out, struct ms_store_totals *totals)
{
	struct ms_tokens tokens;
	char err[256];
	size_t i;

	ms_tokens_init(&tokens);
	for (i = 0; i < list->count; i++) {
		tokens.count = 0;
		if (ms_tokenize_message(list->items[i].data, list->items[i].size, &tokens) < 0)
			die("out of memory");
		out[i].counts = calloc(tokens.count + 1, sizeof(*out[i].counts));
		out[i].count = tokens.count;
		out[i].is_spam = is_spam;
		if (out[i].counts == NULL ||
		    ms_store_fetch(store, NULL, tokens.hashes, tokens.count, out[i].counts, totals,
		                   err, sizeof(err)) < 0)
			die("%s: %s", list->items[i].path, err);
	}
	ms_tokens_free(&tokens);
}

static int
cmp_score(const void *a, const void *b)
{
	double sa = ((const struct counted *)a)->score, sb = ((const struct counted *)b)->score;

	return sa < sb ? -1 : sa > sb ? 1 : 0;
}

static int
cmp_double_desc(const void *a, const void *b)
{
	double da = *(const double *)a, db = *(const double *)b;

	return da < db ? 1 : da > db ? -1 : 0;
}

/* Area above the ROC curve in percent; ties count half. */
static double
one_minus_roca(struct counted *all, size_t n, size_t nspam, size_t nham)
{
	double pairs = 0.0;
	size_t i = 0, j, hams_below = 0, tie_spam, tie_ham;

	qsort(all, n, sizeof(*all), cmp_score);
	while (i < n) {
		for (j = i, tie_spam = tie_ham = 0; j < n && all[j].score == all[i].score; j++)
			all[j].is_spam ? tie_spam++ : tie_ham++;
		pairs += (double)tie_spam * ((double)hams_below + (double)tie_ham / 2.0);
		hams_below += tie_ham;
		i = j;
	}
	return 100.0 * (1.0 - pairs / ((double)nspam * (double)nham));
}

static const double thresholds[] = {0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999};
#define N_THRESHOLDS (sizeof(thresholds) / sizeof(thresholds[0]))

static void
report(const struct ms_classify_params *p, struct counted *all, size_t n, size_t nspam, size_t nham,
       double *ham_scores)
{
	size_t i, t, allowed = nham / 1000, fn_low = 0, fp[N_THRESHOLDS] = {0},
	             fn[N_THRESHOLDS] = {0};
	double cut;

	for (i = 0, t = 0; i < n; i++) {
		if (!all[i].is_spam)
			ham_scores[t++] = all[i].score;
	}
	qsort(ham_scores, nham, sizeof(*ham_scores), cmp_double_desc);
	cut = ham_scores[allowed];
	for (i = 0; i < n; i++) {
		if (all[i].is_spam && all[i].score <= cut)
			fn_low++;
		for (t = 0; t < N_THRESHOLDS; t++) {
			if (all[i].is_spam && all[i].score < thresholds[t])
				fn[t]++;
			else if (!all[i].is_spam && all[i].score >= thresholds[t])
				fp[t]++;
		}
	}
	printf("s=%g x=%g min_dev=%g max=%u k=%g roca=%.4f fn@%zufp=%zu", p->s, p->x, p->min_dev,
	       p->max_tokens, p->tokens_per_dof, one_minus_roca(all, n, nspam, nham), allowed,
	       fn_low);
	for (t = 0; t < N_THRESHOLDS; t++)
		printf(" t%g=%zu/%zu", thresholds[t], fp[t], fn[t]);
	printf("\n");
}

#define N(array) (sizeof(array) / sizeof(*(array)))

static int
cmd_tune(const struct ms_config *cfg, const char *spam_list, const char *ham_list)
{
	static const double grid_s[] = {0.03, 0.1, 0.3, 1.0};
	static const double grid_x[] = {0.5, 0.55, 0.6};
	static const double grid_dev[] = {0.0, 0.2, 0.375, 0.45};
	static const unsigned int grid_max[] = {0, 50, 150};
	static const double grid_k[] = {1, 2, 4, 8, 16};
	struct message_list spam, ham;
	struct ms_store_totals totals;
	struct ms_classify_params p;
	struct counted *all;
	struct ms_store *store;
	double *ham_scores;
	unsigned int used;
	size_t n, i, g;

	store = ms_store_create(cfg->redis, cfg->redis_read, cfg->redis_prefix,
	                        cfg->token_table_bits, 10000);
	load_list(spam_list, &spam);
	load_list(ham_list, &ham);
	n = spam.count + ham.count;
	all = calloc(n, sizeof(*all));
	ham_scores = calloc(ham.count + 1, sizeof(*ham_scores));
	if (store == NULL || all == NULL || ham_scores == NULL || ham.count == 0)
		die("out of memory or no ham");
	fetch_counts(store, &spam, 1, all, &totals);
	fetch_counts(store, &ham, 0, all + spam.count, &totals);
	/* one flat loop over the grid: index = a * |x| * |dev| * |max| * |k| + ... */
	for (g = 0; g < N(grid_s) * N(grid_x) * N(grid_dev) * N(grid_max) * N(grid_k); g++) {
		p.tokens_per_dof = grid_k[g % N(grid_k)];
		p.max_tokens = grid_max[g / N(grid_k) % N(grid_max)];
		p.min_dev = grid_dev[g / (N(grid_k) * N(grid_max)) % N(grid_dev)];
		p.x = grid_x[g / (N(grid_k) * N(grid_max) * N(grid_dev)) % N(grid_x)];
		p.s = grid_s[g / (N(grid_k) * N(grid_max) * N(grid_dev) * N(grid_x))];
		for (i = 0; i < n; i++) {
			if (ms_classify(&p, all[i].counts, all[i].count, totals.learned_spam,
			                totals.learned_ham, &all[i].score, &used) < 0)
				die("out of memory");
		}
		report(&p, all, n, spam.count, ham.count, ham_scores);
	}
	ms_store_destroy(&store);
	return 0;
}

int
main(int argc, char **argv)
{
	struct ms_config cfg;
	struct ms_filter *filter;
	char err[512];
	int arg = 1, ret;

	ms_log_open("ms-bench", true);
	ms_config_init(&cfg);
	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		if (ms_config_load(&cfg, argv[2], err, sizeof(err)) < 0)
			die("%s", err);
		arg = 3;
	}
	if ((filter = ms_filter_create(&cfg)) == NULL)
		die("out of memory");
	if (argc - arg == 3 && strcmp(argv[arg], "learn") == 0)
		ret = cmd_learn(filter, argv[arg + 1], argv[arg + 2]);
	else if (argc - arg == 2 && strcmp(argv[arg], "classify") == 0)
		ret = cmd_classify(filter, argv[arg + 1]);
	else if (argc - arg == 3 && strcmp(argv[arg], "tune") == 0)
		ret = cmd_tune(&cfg, argv[arg + 1], argv[arg + 2]);
	else
		die("usage: ms-bench [-c CONF] learn spam|ham LIST | classify LIST | tune SPAMLIST "
		    "HAMLIST");
	ms_filter_destroy(&filter);
	ms_config_free(&cfg);
	return ret;
}
