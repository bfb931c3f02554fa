#define _GNU_SOURCE /* asprintf */
#include "ms-config.h"
#include "ms-deliver.h"
#include "ms-filter.h"
#include "ms-header.h"
#include "ms-test.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Not root's: as root, delivery switches to this uid like it would for a
 * real user; as anyone else it writes as itself. */
#define TEST_UID 5000

static char root[64];
static struct ms_config cfg;
static struct ms_deliver *ctx;

static void
setup(void)
{
	char path[256];
	FILE *fp;

	ms_test_mkdtemp(root, sizeof(root), "deliver");
	ck_assert_int_eq(chmod(root, 0755), 0);
	snprintf(path, sizeof(path), "%s/users", root);
	ck_assert((fp = fopen(path, "w")) != NULL);
	fprintf(fp, "user@example.test:{PLAIN}x:%d:%d::::\n", TEST_UID, TEST_UID);
	fprintf(fp, "broken@example.test:{PLAIN}x:no-such-user-xyz:::::\n");
	ck_assert_int_eq(fclose(fp), 0);
	snprintf(path, sizeof(path), "%s/mail", root);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	if (geteuid() == 0)
		ck_assert_int_eq(chown(path, TEST_UID, TEST_UID), 0);

	ms_config_init(&cfg);
	free(cfg.userdb);
	free(cfg.mail_location);
	free(cfg.hostname);
	free(cfg.user);
	free(cfg.group);
	ck_assert_int_ge(asprintf(&cfg.userdb, "passwd-file:%s/users", root), 0);
	ck_assert_int_ge(asprintf(&cfg.mail_location, "maildir:%s/mail/%%d/%%n", root), 0);
	cfg.hostname = strdup("mx/1:a");
	cfg.user = strdup("5000");
	cfg.group = strdup("5000");
	cfg.max_message_size = 4096;
	ck_assert((ctx = ms_deliver_create(&cfg)) != NULL);
}

static void
teardown(void)
{
	ms_deliver_destroy(&ctx);
	ms_config_free(&cfg);
	ms_test_rmtree(root);
}

static char *
read_all(const char *path)
{
	static char buf[16384];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	ck_assert_int_ge(n, 0);
	close(fd);
	buf[n] = '\0';
	return buf;
}

static enum ms_deliver_status
deliver(const char *rcpt, const char *mailbox, const char *text, const struct ms_verdict *verdict,
        struct ms_deliver_result *result)
{
	struct ms_envelope env = {"sender@remote.test", rcpt, NULL, mailbox};
	struct ms_message msg = {(const unsigned char *)text, strlen(text)};

	return ms_deliver_message(ctx, &env, &msg, verdict, result);
}

START_TEST(test_header_length)
{
	const char *m = "A: 1\r\nB: 2\r\n\r\nbody\r\n";

	ck_assert_uint_eq(ms_header_length((const unsigned char *)m, strlen(m)), 12);
	ck_assert_uint_eq(ms_header_length((const unsigned char *)"\nbody", 5), 0);
	ck_assert_uint_eq(ms_header_length((const unsigned char *)"A: 1\nB", 6), 6);
}
END_TEST

START_TEST(test_filter)
{
	const char *h = "Received: from x\n"
	                "X-Spam-Flag: YES\n"
	                "Subject: keep\n"
	                "x-spam-status: Yes, score=1.00\n"
	                "\tfolded continuation\r\n"
	                "  another one\n"
	                "X-Spam-Score : 0.99\n"
	                "Return-Path: <forged@x>\n"
	                "Return-Path-Like: kept\n"
	                "X-Spammy: kept\n"
	                "To: someone\n"
	                " folded To\n";
	unsigned char out[512];
	size_t n = ms_header_filter((const unsigned char *)h, strlen(h), out);

	out[n] = '\0';
	ck_assert_str_eq((char *)out, "Received: from x\n"
	                              "Subject: keep\n"
	                              "Return-Path-Like: kept\n"
	                              "X-Spammy: kept\n"
	                              "To: someone\n"
	                              " folded To\n");
}
END_TEST

START_TEST(test_top_delivered_to)
{
	const char *smtpd = "Return-Path: <s@r.test>\nDelivered-To: User@Example.test\nA: b\n";
	const char *deep = "A: b\nDelivered-To: user@example.test\n";

	ck_assert(ms_header_top_delivered_to((const unsigned char *)smtpd, strlen(smtpd),
	                                     "user@example.test"));
	ck_assert(!ms_header_top_delivered_to((const unsigned char *)smtpd, strlen(smtpd),
	                                      "other@example.test"));
	ck_assert(!ms_header_top_delivered_to((const unsigned char *)deep, strlen(deep),
	                                      "user@example.test"));
}
END_TEST

START_TEST(test_lda_helpers)
{
	const char *m = "From sender@x Sat Nov 28 09:00:00 2026\nReturn-Path: < a@b >\n\n";
	size_t skip = ms_header_mbox_from_length((const unsigned char *)m, strlen(m));
	char buf[64];

	ck_assert_uint_eq(skip, strlen("From sender@x Sat Nov 28 09:00:00 2026\n"));
	ck_assert_uint_eq(ms_header_mbox_from_length((const unsigned char *)"From: a\n", 8), 0);
	ck_assert(ms_header_return_path((const unsigned char *)m + skip, strlen(m) - skip, buf,
	                                sizeof(buf)));
	ck_assert_str_eq(buf, "a@b");
	ck_assert(ms_header_return_path((const unsigned char *)"Return-Path: <>\n", 16, buf,
	                                sizeof(buf)));
	ck_assert_str_eq(buf, "");
	ck_assert(!ms_header_return_path((const unsigned char *)"A: b\n", 5, buf, sizeof(buf)));
	ck_assert(
	        !ms_header_return_path((const unsigned char *)m + skip, strlen(m) - skip, buf, 3));
}
END_TEST

START_TEST(test_deliver_rewrites)
{
	struct ms_deliver_result result;
	struct stat st;
	const char *text = "X-Spam-Flag: YES\r\n"
	                   "X-Spam-Status: Yes,\r\n score=1.0\r\n"
	                   "Subject: hello\r\n"
	                   "\r\n"
	                   "X-Spam-Flag: YES in the body stays\r\n";

	ck_assert_int_eq(deliver("user+tag@example.test", NULL, text, NULL, &result),
	                 MS_DELIVER_OK);
	ck_assert_str_eq(read_all(result.path), "Return-Path: <sender@remote.test>\n"
	                                        "Delivered-To: user+tag@example.test\n"
	                                        "Subject: hello\n"
	                                        "\n"
	                                        "X-Spam-Flag: YES in the body stays\n");
	ck_assert(strstr(result.path, "/mail/example.test/user/new/") != NULL);
	ck_assert(strstr(result.path, ".mx\\0571\\072a,S=") != NULL);
	ck_assert_int_eq(stat(result.path, &st), 0);
	if (geteuid() == 0) {
		ck_assert_uint_eq(st.st_uid, TEST_UID);
		ck_assert_uint_eq(st.st_gid, TEST_UID);
		ck_assert_uint_eq(geteuid(), 0); /* and back */
	}
}
END_TEST

START_TEST(test_deliver_verdict)
{
	struct ms_verdict spam = {MS_VERDICT_OK, 0.987, true, 42, ""};
	struct ms_deliver_result result;

	ck_assert_int_eq(
	        deliver("user@example.test", NULL, "X-Spam-Flag: NO\nS: x\n\nb\n", &spam, &result),
	        MS_DELIVER_OK);
	ck_assert(strstr(result.path, "/user/.Junk/new/") != NULL);
	ck_assert_str_eq(read_all(result.path), "Return-Path: <sender@remote.test>\n"
	                                        "Delivered-To: user@example.test\n"
	                                        "X-Spam-Flag: YES\n"
	                                        "X-Spam-Score: 0.99\n"
	                                        "X-Spam-Status: Yes, score=0.99 tokens=42\n"
	                                        "S: x\n\nb\n");
	/* -m wins over the verdict; an unsafe -m is INBOX */
	ck_assert_int_eq(deliver("user@example.test", "Lists", "S: x\n\nb\n", &spam, &result),
	                 MS_DELIVER_OK);
	ck_assert(strstr(result.path, "/user/.Lists/new/") != NULL);
	ck_assert_int_eq(deliver("user@example.test", "../../x", "S: x\n\nb\n", &spam, &result),
	                 MS_DELIVER_OK);
	ck_assert(strstr(result.path, "/user/new/") != NULL);
}
END_TEST

START_TEST(test_smtpd_delivered_to_once)
{
	struct ms_deliver_result result;

	ck_assert_int_eq(deliver("user@example.test", NULL,
	                         "Return-Path: <sender@remote.test>\n"
	                         "Delivered-To: user@example.test\nS: x\n\nb\n",
	                         NULL, &result),
	                 MS_DELIVER_OK);
	ck_assert_str_eq(read_all(result.path), "Return-Path: <sender@remote.test>\n"
	                                        "Delivered-To: user@example.test\nS: x\n\nb\n");
}
END_TEST

START_TEST(test_sender_cannot_inject_headers)
{
	struct ms_envelope env = {"a@b.test\nX-Spam-Flag: NO", "user@example.test", NULL, NULL};
	struct ms_message msg = {(const unsigned char *)"S: x\n\nb\n", 8};
	struct ms_deliver_result result;

	ck_assert_int_eq(ms_deliver_message(ctx, &env, &msg, NULL, &result), MS_DELIVER_OK);
	ck_assert_str_eq(read_all(result.path), "Return-Path: <a@b.test?X-Spam-Flag: NO>\n"
	                                        "Delivered-To: user@example.test\nS: x\n\nb\n");
}
END_TEST

START_TEST(test_deliver_failures)
{
	struct ms_deliver_result result;
	char big[5000];

	ck_assert_int_eq(deliver("nobody@example.test", NULL, "S: x\n\nb\n", NULL, &result),
	                 MS_DELIVER_NOUSER);
	ck_assert_int_eq(deliver("../x@example.test", NULL, "S: x\n\nb\n", NULL, &result),
	                 MS_DELIVER_NOUSER);
	ck_assert_int_eq(deliver("a/b@example.test", NULL, "S: x\n\nb\n", NULL, &result),
	                 MS_DELIVER_NOUSER);
	ck_assert_int_eq(deliver("broken@example.test", NULL, "S: x\n\nb\n", NULL, &result),
	                 MS_DELIVER_TEMPFAIL);
	ck_assert_int_eq(ms_deliver_check_rcpt(ctx, "user@example.test", &result), MS_DELIVER_OK);
	ck_assert_int_eq(ms_deliver_check_rcpt(ctx, "nobody@example.test", &result),
	                 MS_DELIVER_NOUSER);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(deliver("user@example.test", NULL, big, NULL, &result), MS_DELIVER_TOOBIG);
}
END_TEST

START_TEST(test_create_fails_on_bad_config)
{
	struct ms_config bad;
	struct ms_deliver *d;

	ms_config_init(&bad);
	free(bad.mail_location);
	bad.mail_location = strdup("maildir:/var/vmail/%q");
	d = ms_deliver_create(&bad);
	ck_assert(d == NULL);
	ms_config_free(&bad);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("deliver");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_header_length);
	tcase_add_test(tc, test_filter);
	tcase_add_test(tc, test_top_delivered_to);
	tcase_add_test(tc, test_lda_helpers);
	tcase_add_test(tc, test_deliver_rewrites);
	tcase_add_test(tc, test_deliver_verdict);
	tcase_add_test(tc, test_smtpd_delivered_to_once);
	tcase_add_test(tc, test_sender_cannot_inject_headers);
	tcase_add_test(tc, test_deliver_failures);
	tcase_add_test(tc, test_create_fails_on_bad_config);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
