#include "ms-maildir.h"
#include "ms-test.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];
static char maildir[256];

static void
setup(void)
{
	ms_test_mkdtemp(root, sizeof(root), "maildir");
	/* parents missing too: the writer makes the whole path */
	snprintf(maildir, sizeof(maildir), "%s/example.test/user", root);
}

static void
teardown(void)
{
	ms_test_rmtree(root);
}

/* Names in dir/sub, or 0 if the directory is missing. */
static int
count_files(const char *dir, const char *sub, char *first, size_t firstlen)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n++ == 0 && first != NULL)
			snprintf(first, firstlen, "%s", de->d_name);
	}
	closedir(d);
	return n;
}

static char *
read_all(const char *path, size_t *size_r)
{
	static char buf[65536 * 4];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf));
	ck_assert_int_ge(n, 0);
	close(fd);
	*size_r = (size_t)n;
	return buf;
}

static enum ms_maildir_status
deliver(const char *folder, const char *text, char *path, size_t pathlen, char *err, size_t errlen)
{
	struct ms_maildir_chunk chunk = {(const unsigned char *)text, strlen(text)};

	return ms_maildir_deliver(maildir, folder, "mx.example.test", &chunk, 1, path, pathlen, err,
	                          errlen);
}

START_TEST(test_names)
{
	char buf[128];

	ms_maildir_escape_host("a/b:c.example", buf, sizeof(buf));
	ck_assert_str_eq(buf, "a\\057b\\072c.example");
	ck_assert_int_eq(ms_maildir_base_name(buf, sizeof(buf), 1700000000, 123456, 4242, 7,
	                                      "mx.example.test"),
	                 0);
	ck_assert_str_eq(buf, "1700000000.M123456P4242Q7.mx.example.test");
	ck_assert_int_eq(ms_maildir_base_name(buf, 10, 1, 2, 3, 4, "h"), -1);
}
END_TEST

START_TEST(test_sizes)
{
	struct ms_maildir_chunk split[2] = {{(const unsigned char *)"a\r", 2},
	                                    {(const unsigned char *)"\nb\rc\n", 5}};
	struct ms_maildir_chunk one = {(const unsigned char *)"x\r\ny\n\r\n", 7};
	size_t size, vsize;

	/* "a\nb\rc\n": the CRLF split across chunks is one LF; the bare CR stays */
	ms_maildir_sizes(split, 2, &size, &vsize);
	ck_assert_uint_eq(size, 6);
	ck_assert_uint_eq(vsize, 8);
	ms_maildir_sizes(&one, 1, &size, &vsize);
	ck_assert_uint_eq(size, 5); /* "x\ny\n\n" */
	ck_assert_uint_eq(vsize, 8);
}
END_TEST

START_TEST(test_deliver_crlf)
{
	char path[1024], err[256], name[256], want[64];
	const char *text = "Subject: hi\r\n\r\nline one\r\nbare\rcr\nlf only\n";
	struct stat st;
	size_t size;
	char *data;

	ck_assert_int_eq(deliver(NULL, text, path, sizeof(path), err, sizeof(err)), MS_MAILDIR_OK);
	data = read_all(path, &size);
	ck_assert_uint_eq(size, strlen("Subject: hi\n\nline one\nbare\rcr\nlf only\n"));
	ck_assert(memcmp(data, "Subject: hi\n\nline one\nbare\rcr\nlf only\n", size) == 0);
	snprintf(want, sizeof(want), ",S=%zu,W=%zu", size, size + 5);
	ck_assert_msg(strstr(path, want) != NULL, "%s lacks %s", path, want);
	ck_assert(strstr(path, "/example.test/user/new/") != NULL);
	ck_assert(strstr(path, ".mx.example.test,S=") != NULL);
	ck_assert_int_eq(count_files(maildir, "new", name, sizeof(name)), 1);
	ck_assert_int_eq(count_files(maildir, "tmp", NULL, 0), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/cur", maildir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	/* names are unique */
	ck_assert_int_eq(deliver(NULL, text, path, sizeof(path), err, sizeof(err)), MS_MAILDIR_OK);
	ck_assert_int_eq(count_files(maildir, "new", NULL, 0), 2);
}
END_TEST

START_TEST(test_folder)
{
	char path[1024], err[256], dir[512];
	struct stat st;

	ck_assert_int_eq(deliver("Junk", "x\n", path, sizeof(path), err, sizeof(err)),
	                 MS_MAILDIR_OK);
	snprintf(dir, sizeof(dir), "%s/.Junk", maildir);
	ck_assert_int_eq(count_files(dir, "new", NULL, 0), 1);
	snprintf(dir, sizeof(dir), "%s/.Junk/maildirfolder", maildir);
	ck_assert_int_eq(stat(dir, &st), 0);
	snprintf(dir, sizeof(dir), "%s/cur", maildir); /* INBOX exists too */
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(count_files(maildir, "new", NULL, 0), 0);
	ck_assert_int_eq(deliver("INBOX", "x\n", path, sizeof(path), err, sizeof(err)),
	                 MS_MAILDIR_OK);
	ck_assert_int_eq(count_files(maildir, "new", NULL, 0), 1);
	ck_assert_int_eq(deliver("../../etc", "x\n", path, sizeof(path), err, sizeof(err)),
	                 MS_MAILDIR_TEMPFAIL);
}
END_TEST

START_TEST(test_tmp_not_writable)
{
	char path[1024], err[256], tmp[512];
	int fd;

	/* root ignores modes: a file where tmp/ should be fails for everyone */
	ck_assert_int_eq(deliver(NULL, "first\n", path, sizeof(path), err, sizeof(err)),
	                 MS_MAILDIR_OK);
	snprintf(tmp, sizeof(tmp), "%s/tmp", maildir);
	ck_assert_int_eq(rmdir(tmp), 0);
	ck_assert_int_ge(fd = open(tmp, O_WRONLY | O_CREAT, 0600), 0);
	close(fd);
	ck_assert_int_eq(deliver(NULL, "second\n", path, sizeof(path), err, sizeof(err)),
	                 MS_MAILDIR_TEMPFAIL);
	ck_assert_msg(strstr(err, "Not a directory") != NULL, "%s", err);
	ck_assert_int_eq(count_files(maildir, "new", NULL, 0), 1);
}
END_TEST

START_TEST(test_write_fails)
{
	static char big[200000];
	struct ms_maildir_chunk chunk = {(const unsigned char *)big, sizeof(big)};
	struct rlimit rl = {100000, RLIM_INFINITY}, old;
	char path[1024], err[256];
	enum ms_maildir_status status;

	/* a write that fails in the middle (EFBIG here, like ENOSPC) leaves
	 * nothing in tmp/ or new/ */
	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(deliver(NULL, "warm up\n", path, sizeof(path), err, sizeof(err)),
	                 MS_MAILDIR_OK);
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	rl.rlim_max = old.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	status = ms_maildir_deliver(maildir, NULL, "h", &chunk, 1, path, sizeof(path), err,
	                            sizeof(err));
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	ck_assert_int_eq(status, MS_MAILDIR_TEMPFAIL);
	ck_assert_msg(strstr(err, "write") != NULL, "%s", err);
	ck_assert_int_eq(count_files(maildir, "tmp", NULL, 0), 0);
	ck_assert_int_eq(count_files(maildir, "new", NULL, 0), 1);
}
END_TEST

START_TEST(test_new_not_a_dir)
{
	char path[1024], err[256], newdir[512];
	int fd;

	ck_assert_int_eq(deliver(NULL, "first\n", path, sizeof(path), err, sizeof(err)),
	                 MS_MAILDIR_OK);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(newdir, sizeof(newdir), "%s/new", maildir);
	ck_assert_int_eq(rmdir(newdir), 0);
	ck_assert_int_ge(fd = open(newdir, O_WRONLY | O_CREAT, 0600), 0);
	close(fd);
	ck_assert_int_eq(deliver(NULL, "second\n", path, sizeof(path), err, sizeof(err)),
	                 MS_MAILDIR_TEMPFAIL);
	ck_assert_int_eq(count_files(maildir, "tmp", NULL, 0), 0);
}
END_TEST

START_TEST(test_tmp_leftover)
{
	char path[1024], err[256], tmp[512], name[256];
	int fd;

	/* a leftover in tmp/ (a crashed delivery) is neither overwritten nor
	 * published */
	ck_assert_int_eq(deliver(NULL, "first\n", path, sizeof(path), err, sizeof(err)),
	                 MS_MAILDIR_OK);
	snprintf(tmp, sizeof(tmp), "%s/tmp/squatter", maildir);
	ck_assert_int_ge(fd = open(tmp, O_WRONLY | O_CREAT, 0600), 0);
	ck_assert_int_eq(write(fd, "old", 3), 3);
	close(fd);
	ck_assert_int_eq(deliver(NULL, "second\n", path, sizeof(path), err, sizeof(err)),
	                 MS_MAILDIR_OK);
	ck_assert_int_eq(count_files(maildir, "tmp", name, sizeof(name)), 1);
	ck_assert_str_eq(name, "squatter");
}
END_TEST

/* The message the staging tests stage and publish. */
static const char staged_text[] = "Subject: s\r\n\r\nbody\r\n";
static const struct ms_maildir_chunk staged_chunk = {(const unsigned char *)staged_text,
                                                     sizeof(staged_text) - 1};

static enum ms_maildir_status
stage(struct ms_maildir_staged *st)
{
	char err[256];

	return ms_maildir_stage(maildir, "h", &staged_chunk, 1, st, err, sizeof(err));
}

static enum ms_maildir_status
publish(struct ms_maildir_staged *st, const char *folder, const char *flags, bool last, char *path,
        size_t pathlen)
{
	char err[256];

	return ms_maildir_publish(st, folder, flags, NULL, last, &staged_chunk, 1, path, pathlen,
	                          err, sizeof(err));
}

START_TEST(test_stage_publish)
{
	struct ms_maildir_staged st;
	char path[1024], dir[512], name[256];
	size_t size;

	ck_assert_int_eq(stage(&st), MS_MAILDIR_OK);
	/* staged: in tmp/, in no folder */
	ck_assert_int_eq(count_files(maildir, "tmp", NULL, 0), 1);
	ck_assert_int_eq(count_files(maildir, "new", NULL, 0), 0);
	ck_assert_int_eq(publish(&st, "INBOX", "", false, path, sizeof(path)), MS_MAILDIR_OK);
	ck_assert_str_eq(read_all(path, &size), "Subject: s\n\nbody\n");
	ck_assert_int_eq(count_files(maildir, "new", name, sizeof(name)), 1);
	ck_assert_msg(strstr(name, ",S=17,W=20") != NULL, "%s", name);
	/* a second folder, made on the way, flags in cur/ */
	ck_assert_int_eq(publish(&st, "Lists.x", "FS", false, path, sizeof(path)), MS_MAILDIR_OK);
	snprintf(dir, sizeof(dir), "%s/.Lists.x", maildir);
	ck_assert_int_eq(count_files(dir, "cur", name, sizeof(name)), 1);
	ck_assert_msg(strstr(name, ",S=17,W=20:2,FS") != NULL, "%s", name);
	ck_assert_str_eq(read_all(path, &size), "Subject: s\n\nbody\n");
	ck_assert_int_eq(publish(&st, "../x", "", false, path, sizeof(path)), MS_MAILDIR_TEMPFAIL);
	/* the staged file gone (no hard link possible): a copy from the chunks */
	ck_assert_int_eq(unlink(st.tmp), 0);
	ck_assert_int_eq(publish(&st, "Junk", "", false, path, sizeof(path)), MS_MAILDIR_OK);
	ck_assert_str_eq(read_all(path, &size), "Subject: s\n\nbody\n");
	ck_assert_int_eq(stage(&st), MS_MAILDIR_OK);
	ck_assert_int_eq(count_files(maildir, "tmp", NULL, 0), 1);
	ms_maildir_unstage(&st);
	ms_maildir_unstage(&st);
	ck_assert_int_eq(count_files(maildir, "tmp", NULL, 0), 0);
	ck_assert_int_eq(count_files(maildir, "new", NULL, 0), 1);
}
END_TEST

START_TEST(test_publish_last)
{
	struct ms_maildir_staged st;
	char path[1024], dir[512], name[256];
	size_t size;

	/* one folder: the staged file itself moves there, nothing stays in tmp/ */
	ck_assert_int_eq(stage(&st), MS_MAILDIR_OK);
	ck_assert_int_eq(publish(&st, "INBOX", "", true, path, sizeof(path)), MS_MAILDIR_OK);
	ck_assert_str_eq(st.tmp, "");
	ck_assert_int_eq(count_files(maildir, "tmp", NULL, 0), 0);
	ck_assert_int_eq(count_files(maildir, "new", name, sizeof(name)), 1);
	ck_assert_str_eq(read_all(path, &size), "Subject: s\n\nbody\n");
	ms_maildir_unstage(&st);
	ck_assert_int_eq(count_files(maildir, "new", NULL, 0), 1);

	/* two folders: a link, then the move; each holds the message */
	ck_assert_int_eq(stage(&st), MS_MAILDIR_OK);
	ck_assert_int_eq(publish(&st, "Work", "F", false, path, sizeof(path)), MS_MAILDIR_OK);
	ck_assert_int_eq(publish(&st, "INBOX", "", true, path, sizeof(path)), MS_MAILDIR_OK);
	ck_assert_int_eq(count_files(maildir, "tmp", NULL, 0), 0);
	ck_assert_int_eq(count_files(maildir, "new", NULL, 0), 2);
	snprintf(dir, sizeof(dir), "%s/.Work", maildir);
	ck_assert_int_eq(count_files(dir, "cur", name, sizeof(name)), 1);
	ck_assert_msg(strstr(name, ":2,F") != NULL, "%s", name);
	ck_assert_str_eq(read_all(path, &size), "Subject: s\n\nbody\n");

	/* published after the move (nothing staged): a copy from the chunks */
	ck_assert_int_eq(publish(&st, "Junk", "", true, path, sizeof(path)), MS_MAILDIR_OK);
	ck_assert_str_eq(read_all(path, &size), "Subject: s\n\nbody\n");
	ck_assert_int_eq(count_files(maildir, "new", NULL, 0), 2);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("maildir");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_deliver_crlf);
	tcase_add_test(tc, test_folder);
	tcase_add_test(tc, test_tmp_not_writable);
	tcase_add_test(tc, test_write_fails);
	tcase_add_test(tc, test_new_not_a_dir);
	tcase_add_test(tc, test_tmp_leftover);
	tcase_add_test(tc, test_stage_publish);
	tcase_add_test(tc, test_publish_last);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
