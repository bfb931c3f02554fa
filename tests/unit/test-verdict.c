#include "ms-filter.h"
#include "ms-test.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *
headers(enum ms_verdict_status status, double score, bool spam, unsigned int n, const char *reason)
{
	static char buf[512];
	struct ms_verdict v = {status, score, spam, n, ""};

	strcpy(v.reason, reason);
	ck_assert_int_eq(ms_verdict_headers(&v, buf, sizeof(buf)), (int)strlen(buf));
	return buf;
}

START_TEST(test_format)
{
	ck_assert_str_eq(headers(MS_VERDICT_OK, 0.987, true, 42, ""),
	                 "X-Spam-Flag: YES\nX-Spam-Score: 0.99\n"
	                 "X-Spam-Status: Yes, score=0.99 tokens=42\n");
	ck_assert_str_eq(headers(MS_VERDICT_OK, 0.01, false, 7, ""),
	                 "X-Spam-Flag: NO\nX-Spam-Score: 0.01\n"
	                 "X-Spam-Status: No, score=0.01 tokens=7\n");
	ck_assert_str_eq(headers(MS_VERDICT_UNKNOWN, 0.5, false, 0, "redis unavailable"),
	                 "X-Spam-Flag: NO\nX-Spam-Score: 0.50\n"
	                 "X-Spam-Status: Unknown, score=0.50 tokens=0 redis unavailable\n");
}
END_TEST

START_TEST(test_bounds)
{
	struct ms_verdict v = {MS_VERDICT_OK, 0.5, false, 1, ""};
	char small[20];

	/* out-of-range scores are clamped; an unknown verdict never says spam */
	ck_assert(strstr(headers(MS_VERDICT_OK, 1.7, true, 1, ""), "Score: 1.00\n") != NULL);
	ck_assert(strstr(headers(MS_VERDICT_OK, -3, false, 1, ""), "Score: 0.00\n") != NULL);
	ck_assert(strstr(headers(MS_VERDICT_OK, NAN, false, 1, ""), "Score: 0.00\n") != NULL);
	ck_assert(strstr(headers(MS_VERDICT_UNKNOWN, 0.9, true, 1, ""), "Flag: NO\n") != NULL);
	/* a reason cannot add header lines */
	ck_assert_str_eq(headers(MS_VERDICT_UNKNOWN, 0, false, 0, "a\r\nX-Evil: 1"),
	                 "X-Spam-Flag: NO\nX-Spam-Score: 0.00\n"
	                 "X-Spam-Status: Unknown, score=0.00 tokens=0 a  X-Evil: 1\n");
	ck_assert_int_eq(ms_verdict_headers(&v, small, sizeof(small)), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("verdict");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_bounds);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
