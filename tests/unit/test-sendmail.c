#include "ms-sendmail.h"
#include "ms-test.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], script[128], out[128];

/* A sendmail that records its arguments and input, then exits with CODE. */
static void
make_sendmail(int code)
{
	FILE *f;

	strcpy(dir, "/tmp/ms-test-sendmail.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/sendmail", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	f = fopen(script, "w");
	fprintf(f, "#!/bin/sh\n{ echo \"$*\"; cat; } > %s\nexit %d\n", out, code);
	fclose(f);
	chmod(script, 0755);
}

static void
cleanup(void)
{
	unlink(out);
	unlink(script);
	rmdir(dir);
}

START_TEST(test_sent)
{
	const char *rcpts[] = {"a@example.net", "b@example.net", NULL};
	char err[256], buf[256];
	FILE *f;
	size_t n;

	make_sendmail(0);
	ck_assert_int_eq(ms_sendmail(script, "me@example.test", rcpts, "Subject: x\n\nhi\n", 16,
	                             err, sizeof(err)),
	                 1);
	f = fopen(out, "r");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	ck_assert_str_eq(buf, "-i -f me@example.test -- a@example.net b@example.net\n"
	                      "Subject: x\n\nhi\n");
	cleanup();
}
END_TEST

START_TEST(test_null_sender)
{
	const char *rcpts[] = {"a@example.net", NULL};
	char err[256], buf[256];
	FILE *f;
	size_t n;

	make_sendmail(0);
	ck_assert_int_eq(ms_sendmail(script, "", rcpts, "x\n", 2, err, sizeof(err)), 1);
	f = fopen(out, "r");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	ck_assert(strncmp(buf, "-i -f <> -- a@example.net\n", 26) == 0);
	cleanup();
}
END_TEST

START_TEST(test_tempfail_and_permfail)
{
	const char *rcpts[] = {"a@example.net", NULL};
	char err[256];

	make_sendmail(75);
	ck_assert_int_eq(ms_sendmail(script, "x@y", rcpts, "x\n", 2, err, sizeof(err)), -1);
	ck_assert(strstr(err, "75") != NULL);
	cleanup();
	make_sendmail(67);
	ck_assert_int_eq(ms_sendmail(script, "x@y", rcpts, "x\n", 2, err, sizeof(err)), 0);
	cleanup();
}
END_TEST

START_TEST(test_missing_program)
{
	const char *rcpts[] = {"a@example.net", NULL};
	char err[256];

	ck_assert_int_eq(
	        ms_sendmail("/nonexistent/sendmail", "x@y", rcpts, "x\n", 2, err, sizeof(err)), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sendmail");
	TCase *tc = tcase_create("sendmail");

	tcase_add_test(tc, test_sent);
	tcase_add_test(tc, test_null_sender);
	tcase_add_test(tc, test_tempfail_and_permfail);
	tcase_add_test(tc, test_missing_program);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
