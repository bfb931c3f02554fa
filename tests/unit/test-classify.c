#include "ms-classify.h"
#include "ms-test.h"
#include "ms-tokenize.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>

#define ck_assert_close(a, b, eps) \
	ck_assert_msg(fabs((a) - (b)) <= (eps), "%.12g != %.12g", (double)(a), (double)(b))

static const struct ms_classify_params plain = {.s = 1.0, .x = 0.5, .min_dev = 0.0};

START_TEST(test_fw)
{
	/* p = (3/10) / (3/10 + 1/10) = 0.75, f = (1 * 0.5 + 4 * 0.75) / (1 + 4) */
	ck_assert_close(ms_classify_fw(&plain, 3, 1, 10, 10), 0.7, 1e-12);
	/* 10 of 100 spam and 30 of 300 ham: equally likely in both */
	ck_assert_close(ms_classify_fw(&plain, 10, 30, 100, 300), 0.5, 1e-12);
	/* never seen: the prior */
	ck_assert_close(ms_classify_fw(&plain, 0, 0, 100, 300), 0.5, 1e-12);
	/* once in spam only: p = 1, f = (0.5 + 1) / 2 */
	ck_assert_close(ms_classify_fw(&plain, 1, 0, 100, 300), 0.75, 1e-12);
	/* a stronger prior pulls harder */
	struct ms_classify_params strong = {.s = 3.0, .x = 0.4};
	ck_assert_close(ms_classify_fw(&strong, 1, 0, 100, 300), (3 * 0.4 + 1) / 4.0, 1e-12);
}
END_TEST

START_TEST(test_chi2q)
{
	/* dof 2: e^-m; dof 4: e^-m (1 + m) */
	ck_assert_close(ms_chi2q(4.0, 2), exp(-2.0), 1e-12);
	ck_assert_close(ms_chi2q(4.0, 4), 3.0 * exp(-2.0), 1e-12);
	/* e^-10 (1 + 10 + 100/2 + 1000/6 + 10000/24) */
	ck_assert_close(ms_chi2q(20.0, 10), 0.029252688076961075, 1e-12);
	ck_assert_close(ms_chi2q(0.0, 10), 1.0, 0);
	/* many tokens: e^-m alone would underflow to 0 */
	ck_assert_close(ms_chi2q(1500.0, 2000), 1.0, 1e-9);
	ck_assert_close(ms_chi2q(2500.0, 2000) / 1.0740080231382197e-13, 1.0, 1e-6);
}
END_TEST

START_TEST(test_combine)
{
	/* f(w) = 0.9 and 0.8 with s = 1, x = 0.5: counts that give exactly those */
	struct ms_token_counts counts[] = {
	        {.spam = 4, .ham = 0}, /* p = 1, f = (0.5 + 4) / 5 = 0.9 */
	        {.spam = 3, .ham = 1}, /* see test_fw: 0.7 with 10/10 learns */
	};
	double score;
	unsigned int used;

	/* one token: H = f, S = 1 - f, so the score is f itself */
	ck_assert_int_eq(ms_classify(&plain, counts, NULL, 1, 10, 10, &score, &used), 0);
	ck_assert_close(score, 0.9, 1e-12);
	ck_assert_uint_eq(used, 1);

	/* f = 0.9 and 0.7: H = 0.63 (1 - ln 0.63), S = 0.03 (1 - ln 0.03) */
	double h = 0.63 * (1 - log(0.63)), s = 0.03 * (1 - log(0.03));
	ck_assert_int_eq(ms_classify(&plain, counts, NULL, 2, 10, 10, &score, &used), 0);
	ck_assert_close(score, (1 + h - s) / 2, 1e-12);
	ck_assert_uint_eq(used, 2);

	/* two tokens per degree of freedom: statistics halved, dof 2, so
	 * H = e^(ln 0.63 / 2) = sqrt(0.63), S = sqrt(0.03) */
	struct ms_classify_params pairs = plain;
	pairs.tokens_per_dof = 2;
	ck_assert_int_eq(ms_classify(&pairs, counts, NULL, 2, 10, 10, &score, &used), 0);
	ck_assert_close(score, (1 + sqrt(0.63) - sqrt(0.03)) / 2, 1e-12);
}
END_TEST

START_TEST(test_pair_weight)
{
	struct ms_token_counts counts[] = {
	        {.spam = 4, .ham = 0}, /* a word, f = 0.9 */
	        {.spam = 3, .ham = 1}, /* a pair (ms-tokenize.h's bit), f = 0.7 */
	};
	const uint64_t hashes[] = {0x10, 0x10 | MS_TOKEN_PAIR_BIT};
	struct ms_classify_params params = plain;
	double score, p, q;
	unsigned int used;

	/* weight 1 is the unweighted combination (test_combine) */
	params.pair_weight = 1.0;
	ck_assert_int_eq(ms_classify(&params, counts, hashes, 2, 10, 10, &score, &used), 0);
	p = 0.63, q = 0.03;
	ck_assert_close(score, (1 + p * (1 - log(p)) - q * (1 - log(q))) / 2, 1e-12);
	/* weight 0.5: the pair's logarithm counts half and the total weight
	 * 1.5 rounds up to 2 observations, dof 4: H = P (1 - ln P) with
	 * P = 0.9 * sqrt(0.7), S likewise with Q = 0.1 * sqrt(0.3) */
	params.pair_weight = 0.5;
	ck_assert_int_eq(ms_classify(&params, counts, hashes, 2, 10, 10, &score, &used), 0);
	p = 0.9 * sqrt(0.7), q = 0.1 * sqrt(0.3);
	ck_assert_close(score, (1 + p * (1 - log(p)) - q * (1 - log(q))) / 2, 1e-12);
	ck_assert_uint_eq(used, 2);
	/* weight 0: the word alone decides */
	params.pair_weight = 0.0;
	ck_assert_int_eq(ms_classify(&params, counts, hashes, 2, 10, 10, &score, &used), 0);
	ck_assert_close(score, 0.9, 1e-12);
	/* no hashes: every token weighs 1 */
	ck_assert_int_eq(ms_classify(&params, counts, NULL, 2, 10, 10, &score, &used), 0);
	ck_assert_close(score, (1 + 0.63 * (1 - log(0.63)) - 0.03 * (1 - log(0.03))) / 2, 1e-12);
}
END_TEST

START_TEST(test_header_apart)
{
	struct ms_token_counts counts[] = {
	        {.spam = 4, .ham = 0}, /* a body word, f = 0.9 */
	        {.spam = 3, .ham = 1}, /* a header token (ms-tokenize.h's bit), f = 0.7 */
	        {.spam = 1, .ham = 1}, /* a header token, f = 0.5 */
	};
	const uint64_t hashes[] = {0x10, 0x20 | MS_TOKEN_HEADER_BIT, 0x30 | MS_TOKEN_HEADER_BIT};
	struct ms_classify_params params = plain;
	double score;
	unsigned int used;

	/* apart: one token per part, so each part's score is its f, and the
	 * message's is their mean (0.9 + 0.7) / 2 */
	params.header_apart = 1;
	ck_assert_int_eq(ms_classify(&params, counts, hashes, 2, 10, 10, &score, &used), 0);
	ck_assert_close(score, 0.8, 1e-12);
	ck_assert_uint_eq(used, 2);
	/* two header tokens, f = 0.7 and 0.5: H = P (1 - ln P) with P = 0.35,
	 * S likewise with Q = 0.15; the body's 0.9 beside it */
	double hp = 0.35 * (1 - log(0.35)), hq = 0.15 * (1 - log(0.15));
	ck_assert_int_eq(ms_classify(&params, counts, hashes, 3, 10, 10, &score, &used), 0);
	ck_assert_close(score, (0.9 + (1 + hp - hq) / 2) / 2, 1e-12);
	/* a part without evidence does not pull the score towards 0.5: only
	 * the header token here */
	ck_assert_int_eq(ms_classify(&params, counts + 1, hashes + 1, 1, 10, 10, &score, &used), 0);
	ck_assert_close(score, 0.7, 1e-12);
	/* and a header token left out by min_dev leaves the body alone */
	params.min_dev = 0.1;
	counts[1] = (struct ms_token_counts){.spam = 1, .ham = 1};
	ck_assert_int_eq(ms_classify(&params, counts, hashes, 2, 10, 10, &score, &used), 0);
	ck_assert_close(score, 0.9, 1e-12);
	ck_assert_uint_eq(used, 1);
	/* not apart, or no hashes: one combination (test_combine) */
	counts[1] = (struct ms_token_counts){.spam = 3, .ham = 1};
	params.min_dev = 0.0;
	params.header_apart = 0;
	double h = 0.63 * (1 - log(0.63)), s = 0.03 * (1 - log(0.03));
	ck_assert_int_eq(ms_classify(&params, counts, hashes, 2, 10, 10, &score, &used), 0);
	ck_assert_close(score, (1 + h - s) / 2, 1e-12);
	params.header_apart = 1;
	ck_assert_int_eq(ms_classify(&params, counts, NULL, 2, 10, 10, &score, &used), 0);
	ck_assert_close(score, (1 + h - s) / 2, 1e-12);
}
END_TEST

START_TEST(test_meta_apart)
{
	struct ms_token_counts counts[] = {
	        {.spam = 4, .ham = 0}, /* a body word, f = 0.9 */
	        {.spam = 3, .ham = 1}, /* a header token, f = 0.7 */
	        {.spam = 0, .ham = 1}, /* a metatoken (ms-tokenize.h's bit), f = 0.25 */
	};
	const uint64_t hashes[] = {0x10, 0x20 | MS_TOKEN_HEADER_BIT, 0x30 | MS_TOKEN_META_BIT};
	struct ms_classify_params params = plain;
	double score, p, q;
	unsigned int used;

	/* three parts of one token each: the mean of the three f */
	params.header_apart = 1;
	params.meta_apart = 1;
	ck_assert_int_eq(ms_classify(&params, counts, hashes, 3, 10, 10, &score, &used), 0);
	ck_assert_close(score, (0.9 + 0.7 + 0.25) / 3, 1e-12);
	ck_assert_uint_eq(used, 3);
	/* metatokens not apart: the metatoken joins the body, f = 0.9 and
	 * 0.25: H = P (1 - ln P) with P = 0.225, S likewise with Q = 0.075;
	 * the header's 0.7 beside it */
	params.meta_apart = 0;
	p = 0.9 * 0.25, q = 0.1 * 0.75;
	ck_assert_int_eq(ms_classify(&params, counts, hashes, 3, 10, 10, &score, &used), 0);
	ck_assert_close(score, ((1 + p * (1 - log(p)) - q * (1 - log(q))) / 2 + 0.7) / 2, 1e-12);
	/* only the metatokens apart: the header token joins the body
	 * (test_combine's 0.9 and 0.7), the metatoken's 0.25 beside it */
	params.header_apart = 0;
	params.meta_apart = 1;
	p = 0.63, q = 0.03;
	ck_assert_int_eq(ms_classify(&params, counts, hashes, 3, 10, 10, &score, &used), 0);
	ck_assert_close(score, ((1 + p * (1 - log(p)) - q * (1 - log(q))) / 2 + 0.25) / 2, 1e-12);
	/* a header token that is also marked meta counts as the header's
	 * (the tokenizer never sets both) */
	const uint64_t both[] = {0x10, 0x20 | MS_TOKEN_HEADER_BIT | MS_TOKEN_META_BIT};
	params.header_apart = 1;
	ck_assert_int_eq(ms_classify(&params, counts, both, 2, 10, 10, &score, &used), 0);
	ck_assert_close(score, (0.9 + 0.7) / 2, 1e-12);
}
END_TEST

START_TEST(test_selection)
{
	struct ms_token_counts counts[] = {
	        {.spam = 0, .ham = 0}, /* unknown: left out */
	        {.spam = 4, .ham = 0}, /* f = 0.9 */
	        {.spam = 1, .ham = 1}, /* f = 0.5: below min_dev */
	        {.spam = 0, .ham = 1}, /* f = 0.25 */
	};
	struct ms_classify_params params = plain;
	double score;
	unsigned int used;

	params.min_dev = 0.1;
	ck_assert_int_eq(ms_classify(&params, counts, NULL, 4, 10, 10, &score, &used), 0);
	ck_assert_uint_eq(used, 2);
	/* max_tokens keeps the most extreme: 0.9 (0.4 from 0.5) over 0.25 */
	params.max_tokens = 1;
	ck_assert_int_eq(ms_classify(&params, counts, NULL, 4, 10, 10, &score, &used), 0);
	ck_assert_uint_eq(used, 1);
	ck_assert_close(score, 0.9, 1e-12);
	/* nothing known: 0.5 from no tokens */
	ck_assert_int_eq(ms_classify(&params, counts, NULL, 1, 10, 10, &score, &used), 0);
	ck_assert_uint_eq(used, 0);
	ck_assert_close(score, 0.5, 0);
}
END_TEST

START_TEST(test_groups)
{
	struct ms_token_counts counts[] = {
	        {.spam = 4, .ham = 0}, /* f = 0.9 */
	        {.spam = 4, .ham = 0}, /* the same counts: the same group */
	        {.spam = 3, .ham = 1}, /* f = 0.7, a group of its own */
	};
	const uint64_t header[] = {0x10, 0x20 | MS_TOKEN_HEADER_BIT, 0x30};
	struct ms_classify_params params = plain;
	/* no limit: three tokens, P = 0.9 * 0.9 * 0.7 = 0.567, dof 6 */
	double lp = log(0.567), lq = log(0.003), score, p, q,
	       ungrouped =
	               (1 + 0.567 * (1 - lp + lp * lp / 2) - 0.003 * (1 - lq + lq * lq / 2)) / 2;
	unsigned int used;

	ck_assert_int_eq(ms_classify(&params, counts, NULL, 3, 10, 10, &score, &used), 0);
	ck_assert_close(score, ungrouped, 1e-12);
	/* groups weigh at most 1: the two 0.9 share one observation, so
	 * P = 0.9^(1/2) 0.9^(1/2) 0.7 = 0.63 with weight 2, dof 4 */
	params.group_max = 1.0;
	p = 0.63, q = 0.03;
	ck_assert_int_eq(ms_classify(&params, counts, NULL, 3, 10, 10, &score, &used), 0);
	ck_assert_close(score, (1 + p * (1 - log(p)) - q * (1 - log(q))) / 2, 1e-12);
	ck_assert_uint_eq(used, 3);
	/* a limit above the group's weight changes nothing */
	params.group_max = 2.0;
	ck_assert_int_eq(ms_classify(&params, counts, NULL, 3, 10, 10, &score, &used), 0);
	ck_assert_close(score, ungrouped, 1e-12);
	/* the same counts in another part are another group: the header's 0.9
	 * and the body's 0.9 and 0.7 (test_combine), each part at full weight */
	params.group_max = 1.0;
	params.header_apart = 1;
	p = 0.63, q = 0.03;
	ck_assert_int_eq(ms_classify(&params, counts, header, 3, 10, 10, &score, &used), 0);
	ck_assert_close(score, (0.9 + (1 + p * (1 - log(p)) - q * (1 - log(q))) / 2) / 2, 1e-12);
}
END_TEST

START_TEST(test_defaults_evidence)
{
	/* s = 0.2, x = 0.55, min_dev = 0.40, k = 16, pair weight 0.5, header,
	 * body and metatokens apart, 100 learns of each class: a token seen
	 * once takes part whatever its class, and a token seen in both classes
	 * only when it is about 9 times likelier in one (doc/classifier.md) */
	struct ms_token_counts counts[] = {
	        {.spam = 1, .ham = 0},  /* f = 1.11 / 1.2 = 0.925 */
	        {.spam = 0, .ham = 1},  /* f = 0.11 / 1.2 = 0.0917 */
	        {.spam = 0, .ham = 2},  /* f = 0.11 / 2.2 = 0.05 */
	        {.spam = 3, .ham = 1},  /* f = 3.11 / 4.2 = 0.7405: left out */
	        {.spam = 8, .ham = 1},  /* f = 8.11 / 9.2 = 0.8815: left out */
	        {.spam = 10, .ham = 1}, /* f = 10.11 / 11.2 = 0.9027 */
	};
	double f[] = {1.11 / 1.2, 0.11 / 1.2, 0.11 / 2.2, 10.11 / 11.2}, h = 1.0, s = 1.0, score;
	unsigned int used, i;

	ck_assert_int_eq(
	        ms_classify(&ms_classify_defaults, counts, NULL, 6, 100, 100, &score, &used), 0);
	ck_assert_uint_eq(used, 4);
	/* k = 16: statistics divided by 16, dof 2 * ceil(4 / 16) = 2, so
	 * H = (f1 f2 f3 f4)^(1/16) and S likewise of the 1 - f */
	for (i = 0; i < 4; i++)
		h *= f[i], s *= 1 - f[i];
	ck_assert_close(score, (1 + pow(h, 1.0 / 16) - pow(s, 1.0 / 16)) / 2, 1e-12);
	/* the third token a sparse pair: it weighs 0.5, dof 2 * ceil(3.5 / 16) */
	const uint64_t hashes[] = {0x10, 0x20, 0x30 | MS_TOKEN_PAIR_BIT, 0x40, 0x50, 0x60};
	ck_assert_int_eq(
	        ms_classify(&ms_classify_defaults, counts, hashes, 6, 100, 100, &score, &used), 0);
	h = f[0] * f[1] * sqrt(f[2]) * f[3];
	s = (1 - f[0]) * (1 - f[1]) * sqrt(1 - f[2]) * (1 - f[3]);
	ck_assert_close(score, (1 + pow(h, 1.0 / 16) - pow(s, 1.0 / 16)) / 2, 1e-12);
	/* the first token from the header, the second a metatoken: header,
	 * body and metatokens are scored apart and averaged */
	const uint64_t apart[] = {
	        0x10 | MS_TOKEN_HEADER_BIT, 0x20 | MS_TOKEN_META_BIT, 0x30, 0x40, 0x50, 0x60};
	ck_assert_int_eq(
	        ms_classify(&ms_classify_defaults, counts, apart, 6, 100, 100, &score, &used), 0);
	h = f[2] * f[3], s = (1 - f[2]) * (1 - f[3]);
	ck_assert_close(score,
	                ((1 + pow(f[0], 1.0 / 16) - pow(1 - f[0], 1.0 / 16)) / 2 +
	                 (1 + pow(f[1], 1.0 / 16) - pow(1 - f[1], 1.0 / 16)) / 2 +
	                 (1 + pow(h, 1.0 / 16) - pow(s, 1.0 / 16)) / 2) /
	                        3,
	                1e-12);
	/* five tokens seen once in spam: one group, weighing 3 of their 5 */
	struct ms_token_counts same[5] = {{1, 0}, {1, 0}, {1, 0}, {1, 0}, {1, 0}};
	ck_assert_int_eq(ms_classify(&ms_classify_defaults, same, NULL, 5, 100, 100, &score, &used),
	                 0);
	ck_assert_close(score, (1 + pow(f[0], 3.0 / 16) - pow(1 - f[0], 3.0 / 16)) / 2, 1e-12);
}
END_TEST

START_TEST(test_extremes)
{
	struct ms_token_counts *counts = calloc(5000, sizeof(*counts));
	double score;
	unsigned int used, i;

	/* counts all different: no two tokens form a group */
	for (i = 0; i < 5000; i++)
		counts[i].spam = 100 + i;
	ck_assert_int_eq(
	        ms_classify(&ms_classify_defaults, counts, NULL, 5000, 1000, 1000, &score, &used),
	        0);
	ck_assert(score > 0.999 && score <= 1.0);
	for (i = 0; i < 5000; i++) {
		counts[i].spam = 0;
		counts[i].ham = 100 + i;
	}
	ck_assert_int_eq(
	        ms_classify(&ms_classify_defaults, counts, NULL, 5000, 1000, 1000, &score, &used),
	        0);
	ck_assert(score >= 0.0 && score < 0.001);
	free(counts);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("classify");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_fw);
	tcase_add_test(tc, test_chi2q);
	tcase_add_test(tc, test_combine);
	tcase_add_test(tc, test_pair_weight);
	tcase_add_test(tc, test_header_apart);
	tcase_add_test(tc, test_meta_apart);
	tcase_add_test(tc, test_selection);
	tcase_add_test(tc, test_groups);
	tcase_add_test(tc, test_defaults_evidence);
	tcase_add_test(tc, test_extremes);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
