/* Sieve at delivery through ms_deliver_message: the real worker
 * (lda/mailsift-sieve) runs real scripts; the Maildir writer stores what
 * they decide. */
#define _GNU_SOURCE /* asprintf */
#include "ms-config.h"
#include "ms-deliver.h"
#include "ms-test.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEST_UID 5000

static char root[64];
static struct ms_config cfg;
static struct ms_deliver *ctx;

static const char msg_text[] = "From: a@example.org\nTo: user@example.test\n"
                               "Subject: hello there\nMessage-ID: <t1@example.org>\n\nbody\n";

static void
write_file(const char *name, const char *text, mode_t mode)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	ck_assert((fp = fopen(path, "w")) != NULL);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
	if (geteuid() == 0)
		ck_assert_int_eq(chown(path, TEST_UID, TEST_UID), 0);
}

static void
setup(void)
{
	char path[512], users[512];

	ms_test_mkdtemp(root, sizeof(root), "sieve");
	ck_assert_int_eq(chmod(root, 0755), 0);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/home%s", root, i == 0 ? "" : "2");
		ck_assert_int_eq(mkdir(path, 0755), 0);
		if (geteuid() == 0)
			ck_assert_int_eq(chown(path, TEST_UID, TEST_UID), 0);
	}
	snprintf(users, sizeof(users),
	         "user@example.test:{PLAIN}x:%d:%d::%s/home::\n"
	         "other@example.test:{PLAIN}x:%d:%d::%s/home2::\n",
	         TEST_UID, TEST_UID, root, TEST_UID, TEST_UID, root);
	write_file("users", users, 0644);
	snprintf(path, sizeof(path), "#!/bin/sh\n{ echo \"$*\"; cat; } > %s/home/sent\n", root);
	write_file("sendmail", path, 0755);

	ms_config_init(&cfg);
	free(cfg.userdb);
	free(cfg.mail_location);
	free(cfg.user);
	free(cfg.group);
	free(cfg.sieve_worker);
	free(cfg.sieve_before);
	free(cfg.sendmail_path);
	ck_assert_int_ge(asprintf(&cfg.userdb, "passwd-file:%s/users", root), 0);
	ck_assert_int_ge(asprintf(&cfg.mail_location, "maildir:%%h/Maildir"), 0);
	ck_assert_int_ge(asprintf(&cfg.sieve_worker, "%s/../lda/mailsift-sieve", MS_TEST_BUILDDIR),
	                 0);
	ck_assert_int_ge(asprintf(&cfg.sendmail_path, "%s/sendmail", root), 0);
	cfg.sieve_before = strdup("");
	cfg.user = strdup("5000");
	cfg.group = strdup("5000");
}

static void
teardown(void)
{
	ms_deliver_destroy(&ctx);
	ms_config_free(&cfg);
	ms_test_rmtree(root);
}

static enum ms_deliver_status
deliver_to(const char *rcpt, struct ms_deliver_result *result)
{
	const struct ms_envelope env = {"a@example.org", rcpt, NULL, NULL};
	const struct ms_message msg = {(const unsigned char *)msg_text, sizeof(msg_text) - 1};

	if (ctx == NULL)
		ck_assert((ctx = ms_deliver_create(&cfg)) != NULL);
	return ms_deliver_message(ctx, &env, &msg, NULL, result);
}

static enum ms_deliver_status
deliver(struct ms_deliver_result *result)
{
	return deliver_to("user@example.test", result);
}

/* Names of the files in ROOT/HOME/Maildir/SUB, space-separated. */
static const char *
files_in_home(const char *home, const char *sub)
{
	static char names[4096];
	char path[512];
	struct dirent *d;
	DIR *dir;

	names[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s/Maildir/%s", root, home, sub);
	if ((dir = opendir(path)) == NULL)
		return names;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		strncat(names, d->d_name, sizeof(names) - strlen(names) - 2);
		strcat(names, " ");
	}
	closedir(dir);
	return names;
}

static const char *
files_in(const char *sub)
{
	return files_in_home("home", sub);
}

static unsigned int
count_words(const char *names)
{
	unsigned int n = 0;

	for (; *names != '\0'; names++)
		n += *names == ' ';
	return n;
}

START_TEST(test_fileinto_with_flags)
{
	struct ms_deliver_result result;

	write_file("home/.dovecot.sieve",
	           "require [\"fileinto\", \"imap4flags\"];\n"
	           "if header :contains \"subject\" \"hello\" {\n"
	           "  fileinto :flags [\"\\\\Seen\", \"\\\\Flagged\"] \"Work\";\n}\n",
	           0644);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	ck_assert_str_eq(files_in("new"), "");
	ck_assert_str_eq(files_in(".Work/new"), "");
	ck_assert(strstr(files_in(".Work/cur"), ":2,FS ") != NULL);
	ck_assert(strstr(result.path, "/.Work/cur/") != NULL);
	/* one store: the staged file itself moved there */
	ck_assert_str_eq(files_in("tmp"), "");
}
END_TEST

START_TEST(test_copy_to_two_folders)
{
	struct ms_deliver_result result;

	write_file("home/.dovecot.sieve",
	           "require [\"fileinto\", \"copy\"];\nfileinto :copy \"Archive\";\n", 0644);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	ck_assert_int_eq(count_words(files_in("new")), 1);
	ck_assert_int_eq(count_words(files_in(".Archive/new")), 1);
	ck_assert_str_eq(files_in("tmp"), "");
}
END_TEST

START_TEST(test_unusable_folder_goes_to_inbox)
{
	struct ms_deliver_result result;
	char inbox_new[512], inbox_cur[512];

	/* a folder the Maildir cannot hold is kept in INBOX; next to the
	 * explicit keep that is two copies there, each with its own name */
	write_file("home/.dovecot.sieve",
	           "require [\"fileinto\", \"imap4flags\"];\n"
	           "fileinto :flags \"\\\\Seen\" \"../x\";\nkeep;\n",
	           0644);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	snprintf(inbox_new, sizeof(inbox_new), "%s", files_in("new"));
	snprintf(inbox_cur, sizeof(inbox_cur), "%s", files_in("cur"));
	ck_assert_int_eq(count_words(inbox_new), 1);
	ck_assert_int_eq(count_words(inbox_cur), 1);
	ck_assert(strstr(inbox_cur, ":2,S ") != NULL);
	/* not the same base name in new/ and cur/ (Dovecot would see a clash) */
	ck_assert(strncmp(inbox_new, inbox_cur, strcspn(inbox_new, ",")) != 0);
	ck_assert_str_eq(files_in("tmp"), "");
}
END_TEST

START_TEST(test_edited_script_is_recompiled)
{
	struct ms_deliver_result result;

	/* the worker keeps compiled scripts; an edit must take effect at once */
	write_file("home/.dovecot.sieve", "require \"fileinto\";\nfileinto \"Work\";\n", 0644);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	ck_assert_str_ne(files_in(".Work/new"), "");
	write_file("home/.dovecot.sieve", "require \"fileinto\";\nfileinto \"Other2\";\n", 0644);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	ck_assert_str_ne(files_in(".Other2/new"), "");
}
END_TEST

START_TEST(test_users_take_turns)
{
	struct ms_deliver_result result;

	/* the worker keeps several users' compiled scripts: each delivery runs
	 * its own user's, also after an edit while the other user was served */
	write_file("home/.dovecot.sieve", "require \"fileinto\";\nfileinto \"A\";\n", 0644);
	write_file("home2/.dovecot.sieve", "require \"fileinto\";\nfileinto \"B\";\n", 0644);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	ck_assert_int_eq(deliver_to("other@example.test", &result), MS_DELIVER_OK);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	/* another length: an edit within the timestamps' granularity shows too */
	write_file("home2/.dovecot.sieve", "require \"fileinto\";\nfileinto \"Cee\";\n", 0644);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	ck_assert_int_eq(deliver_to("other@example.test", &result), MS_DELIVER_OK);
	ck_assert_int_eq(count_words(files_in(".A/new")), 3);
	ck_assert_int_eq(count_words(files_in_home("home2", ".B/new")), 1);
	ck_assert_int_eq(count_words(files_in_home("home2", ".Cee/new")), 1);
	ck_assert_str_eq(files_in_home("home2", ".A/new"), "");
	ck_assert_str_eq(files_in(".B/new"), "");
	/* the message written while Sieve ran is linked, not left in tmp/ */
	ck_assert_str_eq(files_in("tmp"), "");
	ck_assert_str_eq(files_in_home("home2", "tmp"), "");
}
END_TEST

START_TEST(test_reject)
{
	struct ms_deliver_result result;

	write_file("home/.dovecot.sieve", "require \"reject\";\nreject \"go away\";\n", 0644);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_REJECTED);
	ck_assert_str_eq(result.reason, "go away");
	ck_assert_str_eq(files_in("new"), "");
	ck_assert_str_eq(files_in("tmp"), "");
}
END_TEST

START_TEST(test_discard)
{
	struct ms_deliver_result result;

	write_file("home/.dovecot.sieve", "discard;\n", 0644);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	ck_assert_str_eq(files_in("new"), "");
	ck_assert_str_eq(files_in("tmp"), "");
}
END_TEST

START_TEST(test_broken_script_keeps_and_logs)
{
	struct ms_deliver_result result;
	char path[512];
	struct stat st;

	write_file("home/.dovecot.sieve", "require \"fileinto\";\nfileinto \"Work\"\n", 0644);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	ck_assert_str_ne(files_in("new"), "");
	snprintf(path, sizeof(path), "%s/home/.dovecot.sieve.log", root);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_gt(st.st_size, 0);
}
END_TEST

START_TEST(test_redirect_through_sendmail)
{
	struct ms_deliver_result result;
	char path[512];
	struct stat st;

	write_file("home/.dovecot.sieve", "redirect \"other@example.net\";\n", 0644);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	ck_assert_str_eq(files_in("new"), "");
	snprintf(path, sizeof(path), "%s/home/sent", root);
	ck_assert_int_eq(stat(path, &st), 0);
}
END_TEST

START_TEST(test_dead_worker_is_tempfail)
{
	struct ms_deliver_result result;

	write_file("home/.dovecot.sieve", "keep;\n", 0644);
	write_file("crash", "#!/bin/sh\nkill -9 $$\n", 0755);
	free(cfg.sieve_worker);
	ck_assert_int_ge(asprintf(&cfg.sieve_worker, "%s/crash", root), 0);
	ck_assert_int_eq(deliver(&result), MS_DELIVER_TEMPFAIL);
	ck_assert(strstr(result.reason, "signal 9") != NULL);
	ck_assert_str_eq(files_in("new"), "");
	/* the next delivery starts a new worker */
	ck_assert_int_eq(deliver(&result), MS_DELIVER_TEMPFAIL);
}
END_TEST

START_TEST(test_sieve_disabled)
{
	struct ms_deliver_result result;

	write_file("home/.dovecot.sieve", "discard;\n", 0644);
	cfg.sieve_enabled = false;
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	ck_assert_str_ne(files_in("new"), "");
}
END_TEST

START_TEST(test_no_script_no_worker)
{
	struct ms_deliver_result result;

	/* a worker that cannot start is never needed without scripts */
	free(cfg.sieve_worker);
	cfg.sieve_worker = strdup("/nonexistent/mailsift-sieve");
	ck_assert_int_eq(deliver(&result), MS_DELIVER_OK);
	ck_assert_str_ne(files_in("new"), "");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("deliver-sieve");
	TCase *tc = tcase_create("sieve");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fileinto_with_flags);
	tcase_add_test(tc, test_copy_to_two_folders);
	tcase_add_test(tc, test_edited_script_is_recompiled);
	tcase_add_test(tc, test_users_take_turns);
	tcase_add_test(tc, test_unusable_folder_goes_to_inbox);
	tcase_add_test(tc, test_reject);
	tcase_add_test(tc, test_discard);
	tcase_add_test(tc, test_broken_script_keeps_and_logs);
	tcase_add_test(tc, test_redirect_through_sendmail);
	tcase_add_test(tc, test_dead_worker_is_tempfail);
	tcase_add_test(tc, test_sieve_disabled);
	tcase_add_test(tc, test_no_script_no_worker);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
