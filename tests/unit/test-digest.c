#include "ms-digest.h"
#include "ms-test.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static void
digest(const char *msg, unsigned char out[MS_DIGEST_SIZE])
{
	ck_assert_int_eq(ms_message_digest((const unsigned char *)msg, strlen(msg), out), 0);
}

START_TEST(test_same_message)
{
	unsigned char a[MS_DIGEST_SIZE], b[MS_DIGEST_SIZE];

	digest("From: x@example.test\nSubject: hi\n\nbody\n", a);
	/* as delivered and read back over IMAP: transport headers, our
	 * X-Spam-* headers, CRLF and a trailing empty line */
	digest("Return-Path: <x@example.test>\r\nDelivered-To: u@example.test\r\n"
	       "Received: from a\r\n\tby b\r\nFrom: x@example.test\r\n"
	       "X-Spam-Flag: NO\r\nX-Spam-Score: 0.01\r\nSubject: hi\r\nX-UID: 7\r\n\r\n"
	       "body\r\n\r\n",
	       b);
	ck_assert_mem_eq(a, b, MS_DIGEST_SIZE);
}
END_TEST

START_TEST(test_different_messages)
{
	unsigned char a[MS_DIGEST_SIZE], b[MS_DIGEST_SIZE], c[MS_DIGEST_SIZE];

	digest("From: x@example.test\nSubject: hi\n\nbody\n", a);
	digest("From: x@example.test\nSubject: hi\n\nbody!\n", b);
	digest("From: x@example.test\nSubject: ho\n\nbody\n", c);
	ck_assert(memcmp(a, b, MS_DIGEST_SIZE) != 0);
	ck_assert(memcmp(a, c, MS_DIGEST_SIZE) != 0);
	/* an X-Spam-like header that is not one of ours still counts */
	digest("From: x@example.test\nX-Spammy: 1\nSubject: hi\n\nbody\n", b);
	ck_assert(memcmp(a, b, MS_DIGEST_SIZE) != 0);
	/* garbage and empty input still have a digest */
	digest("", b);
	digest("\r\n\r\n:::\n", c);
	ck_assert(memcmp(b, c, MS_DIGEST_SIZE) != 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("digest");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_same_message);
	tcase_add_test(tc, test_different_messages);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
