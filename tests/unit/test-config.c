#include "ms-config.h"
#include "ms-test.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *
write_temp(const char *text)
{
	char *path = strdup("/tmp/ms-test-config.XXXXXX");
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

START_TEST(test_defaults)
{
	struct ms_config cfg;

	ms_config_init(&cfg);
	ck_assert_str_eq(cfg.userdb, "passwd-file:/etc/mail/credentials");
	ck_assert_str_eq(cfg.mail_location, "maildir:/var/vmail/%d/%n");
	ck_assert_str_eq(cfg.junk_mailbox, "Junk");
	ck_assert_uint_eq(cfg.max_message_size, 35u * 1024 * 1024);
	ck_assert_uint_eq(cfg.lmtp_socket_mode, 0666);
	ck_assert_uint_eq(cfg.redis_timeout_msecs, 500);
	ck_assert(!cfg.per_user);
	ms_config_free(&cfg);
}
END_TEST

START_TEST(test_load_file)
{
	struct ms_config cfg;
	char err[512];
	char *path = write_temp("# comment\n\n  junk_mailbox =  Spam  \n"
	                        "max_message_size = 10k\nper_user = yes\n"
	                        "lmtp_socket_mode = 0660\nspam_threshold=0.75\n");

	ms_config_init(&cfg);
	ck_assert_int_eq(ms_config_load(&cfg, path, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.junk_mailbox, "Spam");
	ck_assert_uint_eq(cfg.max_message_size, 10240);
	ck_assert(cfg.per_user);
	ck_assert_uint_eq(cfg.lmtp_socket_mode, 0660);
	ck_assert(cfg.spam_threshold > 0.749 && cfg.spam_threshold < 0.751);
	ms_config_free(&cfg);
	unlink(path);
	free(path);
}
END_TEST

/* Every error names the file, the line and the key. */
static void
expect_error(const char *text, const char *expected_suffix)
{
	struct ms_config cfg;
	char err[512], want[512];
	char *path = write_temp(text);

	ms_config_init(&cfg);
	ck_assert_int_eq(ms_config_load(&cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:%s", path, expected_suffix);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got \"%s\", want prefix \"%s\"", err,
	              want);
	ms_config_free(&cfg);
	unlink(path);
	free(path);
}

START_TEST(test_errors)
{
	expect_error("junk_mailbox = x\nbogus = 1\n", "2: bogus: unknown key");
	expect_error("\n\nmax_message_size = 12Q\n", "3: max_message_size: expected a size");
	expect_error("per_user = maybe\n", "1: per_user: expected yes or no");
	expect_error("lmtp_socket_mode = 0999\n", "1: lmtp_socket_mode: expected an octal");
	expect_error("spam_threshold = 1.5\n", "1: spam_threshold: expected a number");
	expect_error("max_connections = -1\n", "1: max_connections: expected a non-negative");
	expect_error("just words\n", "1: expected \"key = value\"");
	expect_error("max_message_size = 99999999999999999999G\n", "1: max_message_size:");
}
END_TEST

START_TEST(test_missing_file)
{
	struct ms_config cfg;
	char err[512];

	ms_config_init(&cfg);
	ck_assert_int_eq(ms_config_load(&cfg, "/nonexistent/ms.conf", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/nonexistent/ms.conf: No such file or directory");
	ms_config_free(&cfg);
}
END_TEST

START_TEST(test_parse_size)
{
	size_t size;

	ck_assert_int_eq(ms_parse_size("0", &size), 0);
	ck_assert_uint_eq(size, 0);
	ck_assert_int_eq(ms_parse_size("1G", &size), 0);
	ck_assert_uint_eq(size, 1024UL * 1024 * 1024);
	ck_assert_int_eq(ms_parse_size("2MB", &size), 0);
	ck_assert_uint_eq(size, 2UL * 1024 * 1024);
	ck_assert_int_eq(ms_parse_size("", &size), -1);
	ck_assert_int_eq(ms_parse_size("-1", &size), -1);
	ck_assert_int_eq(ms_parse_size("1MX", &size), -1);
	ck_assert_int_eq(ms_parse_size("k", &size), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_parse_size);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
