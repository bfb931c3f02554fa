#include "ms-control.h"
#include "ms-test.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static struct ms_control_req req;
static char err[256];

static int
parse(const char *line)
{
	err[0] = '\0';
	return ms_control_parse(line, 1000, &req, err, sizeof(err));
}

START_TEST(test_requests)
{
	ck_assert_int_eq(parse("POKE"), 0);
	ck_assert_int_eq(req.cmd, MS_CONTROL_POKE);
	ck_assert_int_eq(parse("QUIT"), 0);
	ck_assert_int_eq(req.cmd, MS_CONTROL_QUIT);
	ck_assert_int_eq(parse("STATS"), 0);
	ck_assert_int_eq(req.cmd, MS_CONTROL_STATS);
	ck_assert_str_eq(req.user, "");
	ck_assert_int_eq(parse("STATS bob@example.test"), 0);
	ck_assert_str_eq(req.user, "bob@example.test");
	ck_assert_int_eq(parse("LEARN spam 1000"), 0);
	ck_assert_int_eq(req.cmd, MS_CONTROL_LEARN);
	ck_assert_int_eq(req.cls, MS_CLASS_SPAM);
	ck_assert_uint_eq(req.size, 1000);
	ck_assert_int_eq(parse("LEARN ham 1 u@d"), 0);
	ck_assert_int_eq(req.cls, MS_CLASS_HAM);
	ck_assert_uint_eq(req.size, 1);
	ck_assert_str_eq(req.user, "u@d");
	ck_assert_int_eq(parse("CLASSIFY 42"), 0);
	ck_assert_int_eq(req.cmd, MS_CONTROL_CLASSIFY);
	ck_assert_uint_eq(req.size, 42);
	ck_assert_int_eq(parse("CLASSIFY 42 u@d"), 0);
	ck_assert_str_eq(req.user, "u@d");
}
END_TEST

static void
expect_error(const char *line, enum ms_control_cmd cmd, const char *why)
{
	ck_assert_int_eq(parse(line), -1);
	ck_assert_int_eq(req.cmd, cmd);
	ck_assert_msg(strstr(err, why) != NULL, "\"%s\": got \"%s\", want \"%s\"", line, err, why);
}

START_TEST(test_errors)
{
	char user[300];

	expect_error("", MS_CONTROL_UNKNOWN, "malformed");
	expect_error("HELLO", MS_CONTROL_UNKNOWN, "unknown command");
	expect_error("poke", MS_CONTROL_UNKNOWN, "unknown command");
	expect_error("POKE now", MS_CONTROL_POKE, "usage: POKE");
	expect_error("STATS a b", MS_CONTROL_STATS, "usage: STATS");
	expect_error("STATS  a", MS_CONTROL_UNKNOWN, "malformed");
	expect_error("STATS a\tb", MS_CONTROL_UNKNOWN, "malformed");
	expect_error("STATS ", MS_CONTROL_UNKNOWN, "malformed");
	expect_error("LEARN spam", MS_CONTROL_LEARN, "usage: LEARN");
	expect_error("LEARN junk 10", MS_CONTROL_LEARN, "spam or ham");
	expect_error("LEARN spam 0", MS_CONTROL_LEARN, "size must be 1..1000");
	expect_error("LEARN spam 1001", MS_CONTROL_LEARN, "size");
	expect_error("LEARN spam -1", MS_CONTROL_LEARN, "size");
	expect_error("LEARN spam +5", MS_CONTROL_LEARN, "size");
	expect_error("LEARN spam 5x", MS_CONTROL_LEARN, "size");
	expect_error("LEARN spam 99999999999999999999999", MS_CONTROL_LEARN, "size");
	expect_error("LEARN spam 5 u v", MS_CONTROL_LEARN, "usage");
	expect_error("CLASSIFY", MS_CONTROL_CLASSIFY, "usage: CLASSIFY");
	expect_error("CLASSIFY spam 5", MS_CONTROL_CLASSIFY, "size");
	expect_error("A B C D E F G", MS_CONTROL_UNKNOWN, "unknown");
	memset(user, 'u', sizeof(user));
	memcpy(user, "STATS ", 6);
	user[sizeof(user) - 1] = '\0';
	expect_error(user, MS_CONTROL_STATS, "too long");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("control");

	tcase_add_test(tc, test_requests);
	tcase_add_test(tc, test_errors);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
