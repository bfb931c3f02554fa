/* Tokenizer ablations without Redis: trains in-memory token counts on the
 * standard split of ../shared/corpus (README there), scores the test half
 * with lib/ms-classify and prints missed spam and false positives at 0.5,
 * (1-ROCA)%, missed spam at <= 0.1% false positives and the number of
 * distinct tokens the store would hold. The end-to-end figures (Redis,
 * peers) are bench/accuracy's; this one compares tokenizer variants fast.
 * usage: tokenize-accuracy CORPUS_DIR [s min_dev]  (bench/tokenize.sh -a) */
#include "ms-classify.h"
#include "ms-tokenize.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_BITS 23

struct counts {
	uint64_t hash;
	struct ms_token_counts c;
};

struct table {
	struct counts *slots;
	size_t used;
};

struct files {
	char **paths;
	size_t count;
};

struct scored {
	double score;
	int spam;
};

static struct counts *
lookup(struct table *t, uint64_t hash, int create)
{
	size_t mask = ((size_t)1 << TABLE_BITS) - 1, i = (size_t)(hash & mask);

	for (;; i = (i + 1) & mask) {
		struct counts *e = &t->slots[i];

		if (e->c.spam + e->c.ham > 0 && e->hash == hash)
			return e;
		if (e->c.spam + e->c.ham == 0) {
			if (!create || t->used + 1 >= mask)
				return NULL;
			e->hash = hash;
			t->used++;
			return e;
		}
	}
}

static int
cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
cmp_score(const void *a, const void *b)
{
	double x = ((const struct scored *)a)->score, y = ((const struct scored *)b)->score;

	return x < y ? -1 : x > y;
}

static void
add_dir(struct files *f, const char *top, const char *dir)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", top, dir);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		f->paths = realloc(f->paths, (f->count + 1) * sizeof(*f->paths));
		f->paths[f->count] = malloc(strlen(dir) + strlen(de->d_name) + 2);
		if (f->paths == NULL || f->paths[f->count] == NULL)
			exit(1);
		sprintf(f->paths[f->count++], "%s/%s", dir, de->d_name);
	}
	closedir(d);
}

static int
tokenize_file(const char *top, const char *rel, struct ms_tokens *tokens)
{
	char path[4096];
	unsigned char *data;
	long size;
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 ||
	    (data = malloc((size_t)size + 1)) == NULL) {
		perror(path);
		exit(1);
	}
	rewind(f);
	size = (long)fread(data, 1, (size_t)size, f);
	fclose(f);
	ret = ms_tokenize_message(data, (size_t)size, tokens);
	free(data);
	return ret;
}

/* (1-ROCA)%: the share of (spam, ham) pairs the scores order wrongly. */
static double
one_minus_roca(struct scored *s, size_t n)
{
	double good = 0, pairs, hams_below = 0, nspam = 0;
	size_t i = 0, j;

	qsort(s, n, sizeof(*s), cmp_score);
	while (i < n) {
		double ham_ties = 0, spam_ties = 0;

		for (j = i; j < n && s[j].score == s[i].score; j++) {
			if (s[j].spam)
				spam_ties++;
			else
				ham_ties++;
		}
		good += spam_ties * (hams_below + ham_ties / 2);
		hams_below += ham_ties;
		nspam += spam_ties;
		i = j;
	}
	pairs = nspam * hams_below;
	return pairs > 0 ? 100 * (1 - good / pairs) : 0;
}

/* Spam at or below the score of the hams allowed through at 0.1% (s sorted). */
static size_t
missed_at_low_fp(const struct scored *s, size_t n, size_t nham)
{
	size_t allowed = nham / 1000, seen = 0, i, missed = 0;
	double threshold = 1;

	for (i = n; i-- > 0;) {
		if (!s[i].spam && seen++ == allowed) {
			threshold = s[i].score;
			break;
		}
	}
	for (i = 0; i < n; i++)
		missed += s[i].spam && s[i].score <= threshold;
	return missed;
}

int
main(int argc, char **argv)
{
	static const char *const dirs[2][3] = {{"easy_ham", "easy_ham_2", "hard_ham"},
	                                       {"spam", "spam_2", NULL}};
	struct ms_classify_params params = ms_classify_defaults;
	struct table table = {calloc((size_t)1 << TABLE_BITS, sizeof(struct counts)), 0};
	struct ms_token_counts *counts = NULL;
	struct files files[2] = {{NULL, 0}, {NULL, 0}};
	struct scored *scored;
	struct ms_tokens tokens;
	uint64_t learned[2] = {0, 0};
	size_t i, j, n = 0, missed = 0, fp = 0, cap = 0;
	unsigned int used;
	char top[4096];
	int c;

	if (argc < 2 || table.slots == NULL) {
		fprintf(stderr, "usage: tokenize-accuracy CORPUS_DIR [s min_dev]\n");
		return 1;
	}
	snprintf(top, sizeof(top), "%s/spamassassin", argv[1]);
	if (argc >= 4) {
		params.s = atof(argv[2]);
		params.min_dev = atof(argv[3]);
	}
	ms_tokens_init(&tokens);
	for (c = 0; c < 2; c++) {
		for (i = 0; i < 3 && dirs[c][i] != NULL; i++)
			add_dir(&files[c], top, dirs[c][i]);
		qsort(files[c].paths, files[c].count, sizeof(char *), cmp_path);
		for (i = 0; i < files[c].count; i += 2) {
			if (tokenize_file(top, files[c].paths[i], &tokens) < 0)
				return 1;
			learned[c]++;
			for (j = 0; j < tokens.count; j++) {
				struct counts *e = lookup(&table, tokens.hashes[j], 1);

				if (e != NULL && c == 1)
					e->c.spam++;
				else if (e != NULL)
					e->c.ham++;
			}
		}
	}
	if ((scored = calloc(files[0].count + files[1].count, sizeof(*scored))) == NULL)
		return 1;
	for (c = 0; c < 2; c++) {
		for (i = 1; i < files[c].count; i += 2) {
			if (tokenize_file(top, files[c].paths[i], &tokens) < 0)
				return 1;
			if (tokens.count > cap) {
				cap = tokens.count;
				if ((counts = realloc(counts, cap * sizeof(*counts))) == NULL)
					return 1;
			}
			for (j = 0; j < tokens.count; j++) {
				struct counts *e = lookup(&table, tokens.hashes[j], 0);

				counts[j] = e != NULL ? e->c : (struct ms_token_counts){0, 0};
			}
			if (ms_classify(&params, counts, tokens.hashes, tokens.count, learned[1],
			                learned[0], &scored[n].score, &used) < 0)
				return 1;
			scored[n].spam = c;
			missed += c == 1 && scored[n].score < 0.5;
			fp += c == 0 && scored[n].score >= 0.5;
			n++;
		}
	}
	printf("trained %llu spam, %llu ham; distinct tokens %zu\n", (unsigned long long)learned[1],
	       (unsigned long long)learned[0], table.used);
	printf("at 0.5: missed spam %zu of %zu, false positives %zu of %zu\n", missed,
	       files[1].count / 2, fp, files[0].count / 2);
	printf("(1-ROCA)%% %.4f\n", one_minus_roca(scored, n));
	printf("missed spam at <= 0.1%% false positives: %zu\n",
	       missed_at_low_fp(scored, n, files[0].count / 2));
	return 0;
}
