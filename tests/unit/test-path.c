#include "ms-path.h"
#include "ms-test.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static bool
safe(const char *addr)
{
	return ms_path_safe_address(addr, strlen(addr));
}

START_TEST(test_safe_addresses)
{
	ck_assert(safe("user@example.test"));
	ck_assert(safe("first.last+tag@sub.example.test"));
	ck_assert(safe("UPPER@Example.Test"));
}
END_TEST

START_TEST(test_unsafe_addresses)
{
	static const char *const bad[] = {
	        "",
	        "@example.test",
	        "user@",
	        "user",
	        "../x@example.test",
	        "a/b@example.test",
	        "/@example.test",
	        "user@../etc",
	        "user@a/b",
	        "..@example.test",
	        "x..y@example.test",
	        ".hidden@example.test",
	        "user@.example.test",
	        "a@b@c",
	        "tab\t@example.test",
	        "nl\n@example.test",
	        "del\x7f@example.test",
	        "esc\x1b@example.test",
	        "user@example.test\r",
	};
	char longaddr[400];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!safe(bad[i]), "\"%s\" accepted", bad[i]);
	/* a NUL inside the given length */
	ck_assert(!ms_path_safe_address("us\0er@example.test", 19));
	memset(longaddr, 'a', sizeof(longaddr));
	memcpy(longaddr + 300, "@example.test", 14);
	ck_assert(!safe(longaddr));
}
END_TEST

START_TEST(test_folders)
{
	ck_assert(ms_path_safe_folder("Junk"));
	ck_assert(ms_path_safe_folder("Archive.2024"));
	ck_assert(ms_path_safe_folder("Sent Items"));
	ck_assert(!ms_path_safe_folder(""));
	ck_assert(!ms_path_safe_folder("../../etc"));
	ck_assert(!ms_path_safe_folder("a/b"));
	ck_assert(!ms_path_safe_folder(".Junk"));
	ck_assert(!ms_path_safe_folder("Junk."));
	ck_assert(!ms_path_safe_folder("a..b"));
	ck_assert(!ms_path_safe_folder("tab\tname"));
	ck_assert(!ms_path_safe_folder("caf\xc3\xa9"));
	ck_assert(!ms_path_safe_folder("back\\slash"));
}
END_TEST

static const struct ms_path_vars vars = {"user@example.test", "user", "example.test", "/home/user"};

static void
expect_path(const char *location, const char *want)
{
	char buf[256], err[256];

	ck_assert_msg(ms_path_expand(location, &vars, buf, sizeof(buf), err, sizeof(err)) == 0,
	              "%s: %s", location, err);
	ck_assert_str_eq(buf, want);
}

static void
expect_fail(const char *location, const struct ms_path_vars *v, size_t bufsize)
{
	char buf[256], err[256];

	ck_assert_msg(ms_path_expand(location, v, buf, bufsize, err, sizeof(err)) == -1,
	              "%s expanded to %s", location, buf);
	ck_assert(strstr(err, "mail_location") != NULL);
}

START_TEST(test_expand)
{
	expect_path("maildir:/var/vmail/%d/%n", "/var/vmail/example.test/user");
	expect_path("/var/vmail/%u", "/var/vmail/user@example.test");
	expect_path("maildir:~/Maildir", "/home/user/Maildir");
	expect_path("maildir:%h/Maildir:INDEX=/var/index/%u", "/home/user/Maildir");
	expect_path("/m/%{domain}/%{username}/%{user}", "/m/example.test/user/user@example.test");
	expect_path("/m/100%%/%n", "/m/100%/user");
	expect_path("~", "/home/user");
	expect_path("/var/vmail/%d/%n//", "/var/vmail/example.test/user");
	expect_path("/", "/");
}
END_TEST

START_TEST(test_expand_bad)
{
	static const struct ms_path_vars nohome = {"user@example.test", "user", "example.test", ""};
	static const struct ms_path_vars evil = {"../x@example.test", "..", "example.test", "/h"};
	static const struct ms_path_vars slash = {"a/b@example.test", "a/b", "example.test", "/h"};
	static const struct ms_path_vars dothome = {"u@d", "u", "d", "/home/../etc"};

	expect_fail("/var/vmail/%x", &vars, 256); /* unknown variable */
	expect_fail("/var/vmail/%", &vars, 256);  /* trailing % */
	expect_fail("/var/vmail/%{nope}", &vars, 256);
	expect_fail("/var/vmail/%{user", &vars, 256);
	expect_fail("relative/%n", &vars, 256);
	expect_fail("maildir:", &vars, 256);
	expect_fail("~/Maildir", &nohome, 256);
	expect_fail("%h/Maildir", &nohome, 256);
	expect_fail("/var/vmail/%d/%n", &evil, 256);  /* ".." component */
	expect_fail("/var/vmail/%d/%n", &slash, 256); /* '/' from a variable */
	expect_fail("/var/vmail/../etc", &vars, 256);
	expect_fail("/var/./vmail", &vars, 256);
	expect_fail("%h/Maildir", &dothome, 256);
	expect_fail("/var/vmail/%d/%n", &vars, 10); /* does not fit */
	expect_fail("/var/vmail/%d/%n", &vars, 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("path");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_safe_addresses);
	tcase_add_test(tc, test_unsafe_addresses);
	tcase_add_test(tc, test_folders);
	tcase_add_test(tc, test_expand);
	tcase_add_test(tc, test_expand_bad);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
