#include "ms-spool.h"
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char spool[64];

static void
setup(void)
{
	char err[256];

	ms_test_mkdtemp(spool, sizeof(spool), "spool");
	ck_assert_msg(ms_spool_mkdirs(spool, (uid_t)-1, (gid_t)-1, err, sizeof(err)) == 0, "%s",
	              err);
}

static void
teardown(void)
{
	ms_test_rmtree(spool);
}

static size_t
count_dir(const char *sub)
{
	char path[256];
	struct dirent *d;
	size_t count = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/%s", spool, sub);
	dir = opendir(path);
	ck_assert_ptr_nonnull(dir);
	while ((d = readdir(dir)) != NULL)
		count += d->d_name[0] != '.';
	closedir(dir);
	return count;
}

static void
write_new(const char *name, const void *data, size_t size)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/new/%s", spool, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, size), (ssize_t)size);
	close(fd);
}

START_TEST(test_submit_and_read)
{
	static const char msg[] = "Subject: hi\r\n\r\nbody\0with nul\n";
	struct ms_spool_entry entry;
	char err[256], **names;
	size_t count;

	ck_assert_msg(ms_spool_submit(spool, "u@example.test", MS_CLASS_SPAM, msg, sizeof(msg) - 1,
	                              err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_int_eq(ms_spool_list(spool, &names, &count, err, sizeof(err)), 0);
	ck_assert_uint_eq(count, 1);
	ck_assert(strncmp(names[0], "spam.", 5) == 0);
	ck_assert_uint_eq(count_dir("tmp"), 0);
	ck_assert_int_eq(ms_spool_read(spool, names[0], 1 << 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_OK);
	ck_assert_str_eq(entry.user, "u@example.test");
	ck_assert_int_eq(entry.cls, MS_CLASS_SPAM);
	ck_assert_uint_eq(entry.size, sizeof(msg) - 1);
	ck_assert(memcmp(entry.msg, msg, entry.size) == 0);
	ms_spool_entry_free(&entry);
	ck_assert_int_eq(ms_spool_remove(spool, names[0], err, sizeof(err)), 0);
	ck_assert_uint_eq(count_dir("new"), 0);
	/* already gone is not an error */
	ck_assert_int_eq(ms_spool_remove(spool, names[0], err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_read(spool, names[0], 1 << 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_GONE);
	ms_spool_names_free(names, count);
}
END_TEST

START_TEST(test_chunks_commit_abort)
{
	struct ms_spool_writer *w;
	struct ms_spool_entry entry;
	char err[256], **names;
	size_t count;

	ck_assert_int_eq(ms_spool_begin(spool, "", MS_CLASS_HAM, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_write(w, "Subject: a\n", 11, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_write(w, "\nxyz\n", 5, err, sizeof(err)), 0);
	/* written, not yet published */
	ck_assert_uint_eq(count_dir("tmp"), 1);
	ck_assert_uint_eq(count_dir("new"), 0);
	ck_assert_int_eq(ms_spool_commit(&w, err, sizeof(err)), 0);
	ck_assert_ptr_null(w);
	ck_assert_uint_eq(count_dir("tmp"), 0);

	ck_assert_int_eq(ms_spool_begin(spool, "x@y", MS_CLASS_SPAM, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_write(w, "dropped", 7, err, sizeof(err)), 0);
	ms_spool_abort(&w);
	ck_assert_ptr_null(w);
	ck_assert_uint_eq(count_dir("tmp"), 0);

	ck_assert_int_eq(ms_spool_list(spool, &names, &count, err, sizeof(err)), 0);
	ck_assert_uint_eq(count, 1);
	ck_assert_int_eq(ms_spool_read(spool, names[0], 1 << 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_OK);
	ck_assert_str_eq(entry.user, "");
	ck_assert_int_eq(entry.cls, MS_CLASS_HAM);
	ck_assert_uint_eq(entry.size, 16);
	ck_assert(memcmp(entry.msg, "Subject: a\n\nxyz\n", 16) == 0);
	ms_spool_entry_free(&entry);
	ms_spool_names_free(names, count);
}
END_TEST

/* Several writers published with one directory fsync. */
START_TEST(test_commit_many)
{
	struct ms_spool_writer *w[3];
	struct ms_spool_entry entry;
	char err[256], path[256], **names;
	size_t count, i;

	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(ms_spool_begin(spool, "u@x", i == 1 ? MS_CLASS_HAM : MS_CLASS_SPAM,
		                                &w[i], err, sizeof(err)),
		                 0);
		ck_assert_int_eq(ms_spool_write(w[i], "S: m\n\nb\n", 8, err, sizeof(err)), 0);
	}
	ms_spool_abort(&w[2]);
	ck_assert_uint_eq(count_dir("tmp"), 2);
	ck_assert_uint_eq(count_dir("new"), 0);
	ck_assert_msg(ms_spool_commit_many(w, 2, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_null(w[0]);
	ck_assert_ptr_null(w[1]);
	ck_assert_uint_eq(count_dir("tmp"), 0);
	ck_assert_int_eq(ms_spool_list(spool, &names, &count, err, sizeof(err)), 0);
	ck_assert_uint_eq(count, 2);
	for (i = 0; i < count; i++) {
		ck_assert_int_eq(ms_spool_read(spool, names[i], 1 << 20, &entry, err, sizeof(err)),
		                 MS_SPOOL_READ_OK);
		ck_assert_uint_eq(entry.size, 8);
		ms_spool_entry_free(&entry);
	}
	ms_spool_names_free(names, count);
	ck_assert_int_eq(ms_spool_commit_many(w, 0, err, sizeof(err)), 0);

	/* new/ gone: the batch fails, says why, and leaves nothing in tmp/ */
	ck_assert_int_eq(ms_spool_begin(spool, "u@x", MS_CLASS_SPAM, &w[0], err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_write(w[0], "x", 1, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/new", spool);
	ms_test_rmtree(path);
	ck_assert_int_eq(ms_spool_commit_many(w, 1, err, sizeof(err)), -1);
	ck_assert_ptr_null(w[0]);
	ck_assert_ptr_nonnull(strstr(err, "new"));
	ck_assert_uint_eq(count_dir("tmp"), 0);
}
END_TEST

/* Each malformed file is BAD with a reason, never OK, never a crash. */
static void
expect_bad(const char *name, const char *text, size_t len, const char *why)
{
	struct ms_spool_entry entry;
	char err[256];

	write_new(name, text, len);
	ck_assert_int_eq(ms_spool_read(spool, name, 1 << 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_BAD);
	ck_assert_msg(strstr(err, why) != NULL, "%s: got \"%s\", want \"%s\"", name, err, why);
	ck_assert_ptr_null(entry.data);
	ck_assert_int_eq(ms_spool_reject(spool, name, err, sizeof(err)), 0);
}

#define BAD(name, text, why) expect_bad(name, text, sizeof(text) - 1, why)
#define HDR                  MS_SPOOL_MAGIC "\n"

/* The only file in new/, read and parsed. */
static void
read_only_file(struct ms_spool_entry *entry, size_t max_size)
{
	char err[256], **names;
	size_t count;

	ck_assert_int_eq(ms_spool_list(spool, &names, &count, err, sizeof(err)), 0);
	ck_assert_uint_eq(count, 1);
	ck_assert_msg(ms_spool_read(spool, names[0], max_size, entry, err, sizeof(err)) ==
	                      MS_SPOOL_READ_OK,
	              "%s", err);
	ms_spool_names_free(names, count);
}

static void
add_record(struct ms_spool_writer *w, const void *msg, size_t size)
{
	char err[256];

	ck_assert_int_eq(ms_spool_record_begin(w, size, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_write(w, msg, size, err, sizeof(err)), 0);
	ck_assert_msg(ms_spool_record_end(w, err, sizeof(err)) == 0, "%s", err);
}

/* The plugin's batch file: records taken back at any point (in the buffer
 * or already on disk) leave no trace; the rest reads back byte for byte. */
START_TEST(test_batch_write_read)
{
	static const char one[] = "Subject: 1\n\nline\n\n5\nnot a length\0nul";
	static const char two[] = "Subject: 2\r\n\r\nb";
	const size_t big_size = 100000;
	struct ms_spool_writer *w;
	struct ms_spool_entry entry;
	char err[256], *big;

	big = malloc(big_size);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', big_size);
	ck_assert_int_eq(ms_spool_batch_begin(spool, "u@x", MS_CLASS_HAM, &w, err, sizeof(err)), 0);
	add_record(w, one, sizeof(one) - 1);
	/* shorter than announced: taken back, the writer goes on */
	ck_assert_int_eq(ms_spool_record_begin(w, 10, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_write(w, "abc", 3, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_record_end(w, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not the 10 announced"));
	/* a source that fails after more than a buffer was written */
	ck_assert_int_eq(ms_spool_record_begin(w, big_size, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_write(w, big, big_size - 1, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_record_abort(w, err, sizeof(err)), 0);
	add_record(w, big, big_size);
	add_record(w, two, sizeof(two) - 1);
	ck_assert_uint_eq(ms_spool_records(w), 3);
	ck_assert(!ms_spool_batch_full(w));
	ck_assert_uint_eq(count_dir("new"), 0);
	ck_assert_msg(ms_spool_commit(&w, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(count_dir("tmp"), 0);

	read_only_file(&entry, 1 << 20);
	ck_assert_uint_eq(entry.version, 2);
	ck_assert_uint_eq(entry.count, 3);
	ck_assert_str_eq(entry.user, "u@x");
	ck_assert_int_eq(entry.cls, MS_CLASS_HAM);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_uint_eq(entry.size, sizeof(one) - 1);
	ck_assert(memcmp(entry.msg, one, entry.size) == 0);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_uint_eq(entry.size, big_size);
	ck_assert(memcmp(entry.msg, big, big_size) == 0);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_uint_eq(entry.size, sizeof(two) - 1);
	ck_assert(memcmp(entry.msg, two, entry.size) == 0);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 0);
	ms_spool_entry_free(&entry);
	free(big);
}
END_TEST

/* A single-message file is one ms_spool_next() too. */
START_TEST(test_single_file_next)
{
	struct ms_spool_entry entry;
	char err[256];

	ck_assert_int_eq(ms_spool_submit(spool, "u", MS_CLASS_SPAM, "m", 1, err, sizeof(err)), 0);
	read_only_file(&entry, 1 << 20);
	ck_assert_uint_eq(entry.version, 1);
	ck_assert_uint_eq(entry.count, 1);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_uint_eq(entry.size, 1);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 0);
	ms_spool_entry_free(&entry);
}
END_TEST

/* Nothing to publish: no file; a rollback: no file either. */
START_TEST(test_batch_empty_and_abort)
{
	struct ms_spool_writer *w;
	char err[256];

	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_SPAM, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_commit(&w, err, sizeof(err)), 0);
	ck_assert_ptr_null(w);
	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_SPAM, &w, err, sizeof(err)), 0);
	add_record(w, "m", 1);
	ck_assert_uint_eq(count_dir("tmp"), 1);
	ms_spool_abort(&w);
	ck_assert_uint_eq(count_dir("tmp") + count_dir("new"), 0);
	/* records are for batches; a batch record needs a size */
	ck_assert_int_eq(ms_spool_begin(spool, "u", MS_CLASS_SPAM, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_record_begin(w, 1, err, sizeof(err)), -1);
	ms_spool_abort(&w);
	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_SPAM, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_record_begin(w, 0, err, sizeof(err)), -1);
	ms_spool_abort(&w);
}
END_TEST

/* A write that fails part-way (here: over RLIMIT_FSIZE) breaks the batch:
 * nothing more goes in, the commit fails and leaves no file. */
START_TEST(test_batch_write_failure)
{
	struct rlimit old, small = {.rlim_cur = 200000, .rlim_max = 0};
	struct ms_spool_writer *w;
	char err[256], *buf;
	void (*old_handler)(int);
	size_t i;
	int ret = 0;

	buf = calloc(1, 70000);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_max = old.rlim_max;
	old_handler = signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_SPAM, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
	for (i = 0; i < 5 && ret == 0; i++) {
		if ((ret = ms_spool_record_begin(w, 70000, err, sizeof(err))) == 0 &&
		    (ret = ms_spool_write(w, buf, 70000, err, sizeof(err))) == 0)
			ret = ms_spool_record_end(w, err, sizeof(err));
	}
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_handler);
	ck_assert_int_eq(ret, -1);
	ck_assert_msg(strstr(err, "write(") != NULL, "%s", err);
	ck_assert_int_eq(ms_spool_record_abort(w, err, sizeof(err)), -1);
	ck_assert_int_eq(ms_spool_record_begin(w, 1, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "an earlier write failed"));
	ck_assert_int_eq(ms_spool_commit(&w, err, sizeof(err)), -1);
	ck_assert_ptr_null(w);
	ck_assert_uint_eq(count_dir("tmp") + count_dir("new"), 0);
	free(buf);
}
END_TEST

/* Past MS_SPOOL_BATCH_ROLL a producer starts another file; the learner
 * reads a batch bigger than one message may be. */
START_TEST(test_batch_full_and_read_limit)
{
	const size_t chunk = 1 << 20;
	struct ms_spool_writer *w;
	struct ms_spool_entry entry;
	char err[256], *buf;
	size_t i, n = MS_SPOOL_BATCH_ROLL / chunk;

	buf = calloc(1, chunk);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_SPAM, &w, err, sizeof(err)), 0);
	for (i = 0; i < n; i++) {
		ck_assert(!ms_spool_batch_full(w));
		add_record(w, buf, chunk);
	}
	ck_assert(ms_spool_batch_full(w));
	ck_assert_int_eq(ms_spool_commit(&w, err, sizeof(err)), 0);
	read_only_file(&entry, 1 << 20);
	ck_assert_uint_eq(entry.count, n);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 0);
	ms_spool_entry_free(&entry);
	free(buf);
}
END_TEST

#define HDR2 MS_SPOOL_MAGIC_BATCH "\nX-Mailsift-User: u\nX-Mailsift-Class: spam\n"

/* A batch whose header is sound reads OK; a broken record shows when
 * ms_spool_next() reaches it, after the sound ones before it. */
static void
expect_bad_record(const char *name, const char *text, size_t len, unsigned int good,
                  const char *why)
{
	struct ms_spool_entry entry;
	char err[256];
	unsigned int i;

	write_new(name, text, len);
	ck_assert_msg(ms_spool_read(spool, name, 1 << 20, &entry, err, sizeof(err)) ==
	                      MS_SPOOL_READ_OK,
	              "%s: %s", name, err);
	for (i = 0; i < good; i++)
		ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, why) != NULL, "%s: got \"%s\", want \"%s\"", name, err, why);
	ms_spool_entry_free(&entry);
	ck_assert_int_eq(ms_spool_reject(spool, name, err, sizeof(err)), 0);
}

#define BAD_RECORD(name, text, good, why) expect_bad_record(name, text, sizeof(text) - 1, good, why)

START_TEST(test_batch_malformed)
{
	struct ms_spool_entry entry;
	char err[256];

	BAD("spam.1", HDR2 "\n1\na\n", "lacks X-Mailsift-Batch");
	BAD("spam.2", HDR2 "X-Mailsift-Batch: 0\n\n", "bad X-Mailsift-Batch");
	BAD("spam.3", HDR2 "X-Mailsift-Batch: x1\n\n1\na\n", "bad X-Mailsift-Batch");
	BAD("spam.4", HDR2 "X-Mailsift-Batch: 99999999999\n\n1\na\n", "bad X-Mailsift-Batch");
	BAD("spam.5", HDR2 "X-Mailsift-Batch: 1\nX-Mailsift-Batch: 1\n\n1\na\n", "duplicate");
	BAD("spam.6", MS_SPOOL_MAGIC_BATCH "\nX-Mailsift-Batch: 1\n\n1\na\n", "lacks");
	BAD("spam.7", "X-Mailsift-Spool: 5\nX-Mailsift-User: u\n\n", "not a spool file");
	BAD_RECORD("spam.10", HDR2 "X-Mailsift-Batch: 2\n\n1\na\n5\nab", 1, "truncated");
	BAD_RECORD("spam.11", HDR2 "X-Mailsift-Batch: 2\n\n1\na\n", 1, "bad length line");
	BAD_RECORD("spam.12", HDR2 "X-Mailsift-Batch: 1\n\n1\na\nX", 1, "data after the last");
	BAD_RECORD("spam.13", HDR2 "X-Mailsift-Batch: 1\n\n01\na\n", 0, "bad length line");
	BAD_RECORD("spam.14", HDR2 "X-Mailsift-Batch: 1\n\n0\n\n", 0, "bad length line");
	BAD_RECORD("spam.15", HDR2 "X-Mailsift-Batch: 1\n\n1\nab", 0, "truncated");
	BAD_RECORD("spam.16", HDR2 "X-Mailsift-Batch: 1\n\n", 0, "message 1 of 1");
	BAD_RECORD("spam.17", HDR2 "X-Mailsift-Batch: 1\n\n99999999999999999999999\na\n", 0,
	           "bad length line");
	BAD_RECORD("spam.18", HDR2 "X-Mailsift-Batch: 1\n\n18446744073709551615\na\n", 0,
	           "bad length line");
	ck_assert_uint_eq(count_dir("new"), 0);
	/* zero-padded counts are what producers write */
	write_new("spam.20", HDR2 "X-Mailsift-Batch: 0000000001\n\n2\nab\n",
	          sizeof(HDR2 "X-Mailsift-Batch: 0000000001\n\n2\nab\n") - 1);
	ck_assert_int_eq(ms_spool_read(spool, "spam.20", 1 << 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_OK);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_uint_eq(entry.size, 2);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 0);
	ms_spool_entry_free(&entry);
}
END_TEST

START_TEST(test_write_fd)
{
	struct ms_spool_writer *w;
	struct ms_spool_entry entry;
	char err[256], **names;
	size_t count;
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write(fds[1], "From: a\n\nb\n", 11), 11);
	close(fds[1]);
	ck_assert_int_eq(ms_spool_begin(spool, "a@b", MS_CLASS_HAM, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_write_fd(w, fds[0], err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_commit(&w, err, sizeof(err)), 0);
	close(fds[0]);
	ck_assert_int_eq(ms_spool_list(spool, &names, &count, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_read(spool, names[0], 1 << 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_OK);
	ck_assert_uint_eq(entry.size, 11);
	ms_spool_entry_free(&entry);
	ms_spool_names_free(names, count);
}
END_TEST

START_TEST(test_list_order_unique)
{
	char err[256], **names;
	size_t count, i;

	for (i = 0; i < 50; i++)
		ck_assert_int_eq(ms_spool_submit(spool, "u", i % 2 ? MS_CLASS_SPAM : MS_CLASS_HAM,
		                                 "x\n\ny", 4, err, sizeof(err)),
		                 0);
	ck_assert_int_eq(ms_spool_list(spool, &names, &count, err, sizeof(err)), 0);
	ck_assert_uint_eq(count, 50);
	for (i = 0; i < count; i++) {
		/* alternating classes prove the sort ignores the class prefix */
		ck_assert(strncmp(names[i], i % 2 ? "spam." : "ham.", i % 2 ? 5 : 4) == 0);
	}
	ms_spool_names_free(names, count);
}
END_TEST

START_TEST(test_bad_user)
{
	char err[256], user[300];
	struct ms_spool_writer *w = NULL;

	ck_assert_int_eq(ms_spool_begin(spool, "a\nX-Mailsift-Class: ham", MS_CLASS_SPAM, &w, err,
	                                sizeof(err)),
	                 -1);
	memset(user, 'a', sizeof(user) - 1);
	user[sizeof(user) - 1] = '\0';
	ck_assert_int_eq(ms_spool_begin(spool, user, MS_CLASS_SPAM, &w, err, sizeof(err)), -1);
	ck_assert_ptr_null(w);
	ck_assert_uint_eq(count_dir("tmp"), 0);
}
END_TEST

START_TEST(test_missing_spool)
{
	char err[256];

	ck_assert_int_eq(
	        ms_spool_submit("/nonexistent/spool", "u", MS_CLASS_HAM, "a", 1, err, sizeof(err)),
	        -1);
	ck_assert(strstr(err, "/nonexistent/spool/tmp/") != NULL);
}
END_TEST

START_TEST(test_malformed)
{
	char big[MS_SPOOL_HEADER_MAX + 100];

	BAD("spam.1", "Subject: x\n\nbody", "not a spool file");
	BAD("spam.2", "", "not a spool file");
	BAD("spam.3", HDR "X-Mailsift-Class: spam\n\nbody", "lacks");
	BAD("spam.4", HDR "X-Mailsift-User: u\n\nbody", "lacks");
	BAD("spam.5", HDR "X-Mailsift-User: u\nX-Mailsift-Class: junk\n\nbody", "neither");
	BAD("spam.6", HDR "X-Mailsift-User: u\nX-Mailsift-Class: ham\n\nbody", "differs");
	BAD("spam.7", HDR "X-Mailsift-User: u\nX-Mailsift-Class: spam\nbody", "blank line");
	BAD("spam.8", HDR "X-Mailsift-User: u\nX-Mailsift-Class: spam\n\n", "empty message");
	BAD("spam.9", HDR "X-Mailsift-User: u\nX-Mailsift-User: v\nX-Mailsift-Class: spam\n\nb",
	    "duplicate");
	BAD("spam.10", HDR "X-Mailsift-User: u\rv\nX-Mailsift-Class: spam\n\nb", "control");
	BAD("spam.11", HDR "Subject: x\nX-Mailsift-User: u\nX-Mailsift-Class: spam\n\nb",
	    "unexpected");
	BAD("spam.12", HDR "X-Mailsift-User:u\nX-Mailsift-Class: spam\n\nb", "Name: value");
	BAD("spam.13", HDR "X-Mailsift-User: u\0v\nX-Mailsift-Class: spam\n\nb", "control");
	BAD("junk.14", HDR "X-Mailsift-User: u\nX-Mailsift-Class: spam\n\nb", "name");
	BAD("spam", HDR "X-Mailsift-User: u\nX-Mailsift-Class: spam\n\nb", "name");
	BAD("spam.15", HDR "X-Mailsift-User: u\nX-Mailsift-Class: spam\r\n\r\nb", "control");
	/* the header must end within MS_SPOOL_HEADER_MAX */
	memset(big, 'a', sizeof(big));
	memcpy(big, HDR "X-Mailsift-Other: ", sizeof(HDR "X-Mailsift-Other: ") - 1);
	big[sizeof(big) - 3] = '\n';
	big[sizeof(big) - 2] = '\n';
	expect_bad("spam.16", big, sizeof(big), "blank line");
	/* all moved aside, none left to loop on */
	ck_assert_uint_eq(count_dir("new"), 0);
	ck_assert_uint_eq(count_dir("bad"), 17);
}
END_TEST

START_TEST(test_unknown_field_skipped)
{
	static const char text[] = HDR "X-Mailsift-Future: 1\nX-Mailsift-User: u\n"
	                               "X-Mailsift-Class: ham\n\nmsg";
	struct ms_spool_entry entry;
	char err[256];

	write_new("ham.1", text, sizeof(text) - 1);
	ck_assert_int_eq(ms_spool_read(spool, "ham.1", 1 << 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_OK);
	ck_assert_uint_eq(entry.size, 3);
	ms_spool_entry_free(&entry);
}
END_TEST

START_TEST(test_too_big_and_not_regular)
{
	struct ms_spool_entry entry;
	char err[256], path[256];

	ck_assert_int_eq(
	        ms_spool_submit(spool, "u", MS_CLASS_HAM, "0123456789", 10, err, sizeof(err)), 0);
	char **names;
	size_t count;
	ck_assert_int_eq(ms_spool_list(spool, &names, &count, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_read(spool, names[0], 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_BAD);
	ms_spool_names_free(names, count);
	snprintf(path, sizeof(path), "%s/new/ham.fifo", spool);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(ms_spool_read(spool, "ham.fifo", 1 << 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_BAD);
	snprintf(path, sizeof(path), "%s/new/ham.link", spool);
	ck_assert_int_eq(symlink("/etc/passwd", path), 0);
	ck_assert_int_eq(ms_spool_read(spool, "ham.link", 1 << 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_BAD);
}
END_TEST

START_TEST(test_clean_tmp)
{
	struct ms_spool_writer *w;
	char err[256];

	ck_assert_int_eq(ms_spool_begin(spool, "u", MS_CLASS_HAM, &w, err, sizeof(err)), 0);
	/* young files stay: a producer may still be writing */
	ck_assert_int_eq(ms_spool_clean_tmp(spool, 3600, err, sizeof(err)), 0);
	ck_assert_uint_eq(count_dir("tmp"), 1);
	sleep(1);
	ck_assert_int_eq(ms_spool_clean_tmp(spool, 0, err, sizeof(err)), 1);
	ck_assert_uint_eq(count_dir("tmp"), 0);
	ms_spool_abort(&w);
}
END_TEST

START_TEST(test_poke)
{
	struct sockaddr_un sun;
	char path[256], buf[16];
	int fd, conn;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/learner.sock", spool);
	/* nobody listening: fails at once */
	ck_assert_int_eq(ms_spool_poke(path), -1);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(ms_spool_poke(path), 0);
	conn = accept(fd, NULL, NULL);
	ck_assert_int_ge(conn, 0);
	n = read(conn, buf, sizeof(buf));
	ck_assert_int_eq(n, 5);
	ck_assert(memcmp(buf, "POKE\n", 5) == 0);
	close(conn);
	close(fd);
}
END_TEST

/* Spool format 3: messages hard-linked into msg/ from a "mail" dir. */
static char mail[64];

static void
setup_links(void)
{
	setup();
	ms_test_mkdtemp(mail, sizeof(mail), "mail");
}

static void
teardown_links(void)
{
	teardown();
	ms_test_rmtree(mail);
}

/* A "Maildir file" holding text; returns its path in a static buffer. */
static const char *
mail_file(const char *name, const char *text)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", mail, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void
add_link(struct ms_spool_writer *w, const char *name, const char *text)
{
	char err[256];

	ck_assert_msg(ms_spool_record_link(w, mail_file(name, text), err, sizeof(err)) == 1, "%s",
	              err);
}

/* The name of the only file in new/. */
static void
only_name(char *name, size_t size)
{
	char err[256], **names;
	size_t count;

	ck_assert_int_eq(ms_spool_list(spool, &names, &count, err, sizeof(err)), 0);
	ck_assert_uint_eq(count, 1);
	snprintf(name, size, "%s", names[0]);
	ms_spool_names_free(names, count);
}

/* Links and bytes in one batch, in order; the linked messages stay valid
 * until released; after learning, links and manifest go. */
START_TEST(test_mixed_batch)
{
	struct ms_spool_writer *w;
	struct ms_spool_entry entry;
	const unsigned char *first;
	char err[256], name[256];
	struct stat st;

	ck_assert_int_eq(ms_spool_batch_begin(spool, "u@x", MS_CLASS_SPAM, &w, err, sizeof(err)),
	                 0);
	add_link(w, "a", "Subject: a\n\nlinked\n");
	add_record(w, "Subject: b\n\ncopied\n", strlen("Subject: b\n\ncopied\n"));
	add_link(w, "c", "Subject: c\n\n@not a link\n");
	ck_assert_uint_eq(ms_spool_records(w), 3);
	ck_assert_uint_eq(count_dir("msg"), 2);
	ck_assert_msg(ms_spool_commit(&w, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(count_dir("tmp"), 0);
	/* Dovecot expunging its name does not take ours */
	ck_assert_int_eq(unlink(mail_file("a", "Subject: a\n\nlinked\n")), 0);

	read_only_file(&entry, 1 << 20);
	only_name(name, sizeof(name));
	ck_assert_uint_eq(entry.version, 3);
	ck_assert_uint_eq(entry.count, 3);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_str_ne(entry.link, "");
	ck_assert_uint_eq(entry.size, strlen("Subject: a\n\nlinked\n"));
	ck_assert(memcmp(entry.msg, "Subject: a\n\nlinked\n", entry.size) == 0);
	first = entry.msg;
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_str_eq(entry.link, "");
	ck_assert(memcmp(entry.msg, "Subject: b\n\ncopied\n", entry.size) == 0);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert(memcmp(entry.msg, "Subject: c\n\n@not a link\n", entry.size) == 0);
	/* still held: the learner hands a group of them to Redis at once */
	ck_assert(memcmp(first, "Subject: a\n\nlinked\n", 19) == 0);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 0);
	ms_spool_release(&entry);
	ck_assert_int_eq(ms_spool_remove_links(spool, &entry, err, sizeof(err)), 0);
	ck_assert_uint_eq(count_dir("msg"), 0);
	ck_assert_int_eq(ms_spool_remove(spool, name, err, sizeof(err)), 0);
	ms_spool_entry_free(&entry);
	/* the producer's own file is untouched */
	ck_assert_int_eq(stat(mail_file("c", "Subject: c\n\n@not a link\n"), &st), 0);
}
END_TEST

/* Without msg/ (a learner from before format 3) or for a source that is
 * gone, nothing is linked and the batch stays format 2. */
START_TEST(test_no_link_dir_or_source)
{
	struct ms_spool_writer *w;
	struct ms_spool_entry entry;
	char err[256], path[256];

	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_HAM, &w, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/no-such-file", mail);
	ck_assert_int_eq(ms_spool_record_link(w, path, err, sizeof(err)), 0);
	ck_assert(ms_spool_links_usable(w));
	ck_assert_uint_eq(ms_spool_records(w), 0);
	ms_spool_abort(&w);

	snprintf(path, sizeof(path), "%s/msg", spool);
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_HAM, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_record_link(w, mail_file("a", "m\n"), err, sizeof(err)), -1);
	ck_assert(!ms_spool_links_usable(w));
	add_record(w, "m\n", strlen("m\n"));
	ck_assert_msg(ms_spool_commit(&w, err, sizeof(err)) == 0, "%s", err);
	read_only_file(&entry, 1 << 20);
	ck_assert_uint_eq(entry.version, 2);
	ms_spool_entry_free(&entry);
}
END_TEST

/* A rollback removes the links with the manifest. */
START_TEST(test_rollback)
{
	struct ms_spool_writer *w;
	char err[256];
	struct stat st;

	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_SPAM, &w, err, sizeof(err)), 0);
	add_link(w, "a", "a\n");
	add_link(w, "b", "b\n");
	ck_assert_uint_eq(count_dir("msg"), 2);
	ms_spool_abort(&w);
	ck_assert_uint_eq(count_dir("msg") + count_dir("tmp") + count_dir("new"), 0);
	ck_assert_int_eq(stat(mail_file("b", "b\n"), &st), 0);
	ck_assert_uint_eq(st.st_nlink, 1);
}
END_TEST

/* A linked file deleted by hand, or too big, is skipped with a reason;
 * the rest of the batch reads on. */
START_TEST(test_missing_and_too_big)
{
	struct ms_spool_writer *w;
	struct ms_spool_entry entry;
	char err[256], path[512];

	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_SPAM, &w, err, sizeof(err)), 0);
	add_link(w, "a", "a\n");
	add_link(w, "b", "b\n");
	add_link(w, "c", "a longer message\n");
	ck_assert_msg(ms_spool_commit(&w, err, sizeof(err)) == 0, "%s", err);
	read_only_file(&entry, 10);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_ptr_nonnull(entry.msg);
	snprintf(path, sizeof(path), "%s/msg/%s", spool, entry.link);
	path[strlen(path) - 1] = '1'; /* the second link */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_ptr_null(entry.msg);
	ck_assert_ptr_nonnull(strstr(entry.link_error, "missing"));
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_ptr_null(entry.msg);
	ck_assert_str_eq(entry.link_error, "too big");
	ck_assert_uint_eq(entry.size, strlen("a longer message\n"));
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_remove_links(spool, &entry, err, sizeof(err)), 0);
	ck_assert_uint_eq(count_dir("msg"), 0);
	ms_spool_entry_free(&entry);
}
END_TEST

/* Out of file descriptors is not the file's fault: retry later (-2). */
START_TEST(test_out_of_fds)
{
	struct ms_spool_writer *w;
	struct ms_spool_entry entry;
	struct rlimit lim, old;
	char err[256];
	int fd;

	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_SPAM, &w, err, sizeof(err)), 0);
	add_link(w, "a", "a\n");
	ck_assert_msg(ms_spool_commit(&w, err, sizeof(err)) == 0, "%s", err);
	read_only_file(&entry, 1 << 20);
	fd = open("/dev/null", O_RDONLY); /* the lowest free descriptor */
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &lim), 0);
	old = lim;
	lim.rlim_cur = (rlim_t)fd; /* every descriptor below it is in use */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), -2);
	ck_assert_ptr_nonnull(strstr(err, "Too many open files"));
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0); /* for the teardown */
	ms_spool_entry_free(&entry);
}
END_TEST

/* Link records are names in msg/, nothing else; only format 3 has them. */
START_TEST(test_malformed_links)
{
	static const char *const bad[] = {"@\n",    "@../new/x\n", "@.hidden\n", "@a/b\n",
	                                  "@a b\n", "@a",          "@a\r\n"};
	struct ms_spool_entry entry;
	char err[256], text[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
		         "X-Mailsift-Spool: 3\nX-Mailsift-User: u\nX-Mailsift-Class: spam\n"
		         "X-Mailsift-Batch: 1\n\n%s",
		         bad[i]);
		write_new("spam.1", text, strlen(text));
		ck_assert_int_eq(ms_spool_read(spool, "spam.1", 1 << 20, &entry, err, sizeof(err)),
		                 MS_SPOOL_READ_OK);
		ck_assert_msg(ms_spool_next(&entry, err, sizeof(err)) == -1, "%s", bad[i]);
		ck_assert_ptr_nonnull(strstr(err, "bad link line"));
		ms_spool_entry_free(&entry);
	}
	snprintf(text, sizeof(text),
	         "X-Mailsift-Spool: 2\nX-Mailsift-User: u\n"
	         "X-Mailsift-Class: spam\nX-Mailsift-Batch: 1\n\n@a\n");
	write_new("spam.1", text, strlen(text));
	ck_assert_int_eq(ms_spool_read(spool, "spam.1", 1 << 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_OK);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "bad length line"));
	ms_spool_entry_free(&entry);
}
END_TEST

/* Links whose manifest is in neither tmp/ nor new/ go once old enough;
 * a transaction still writing and a published batch keep theirs. */
START_TEST(test_clean_links)
{
	struct ms_spool_writer *open_w, *w;
	char err[256], orphan[256];

	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_SPAM, &open_w, err, sizeof(err)),
	                 0);
	add_link(open_w, "a", "a\n");
	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_HAM, &w, err, sizeof(err)), 0);
	add_link(w, "b", "b\n");
	ck_assert_msg(ms_spool_commit(&w, err, sizeof(err)) == 0, "%s", err);
	snprintf(orphan, sizeof(orphan), "%s/msg/0000000001.000000.1.0.host.0", spool);
	ck_assert_int_eq(link(mail_file("c", "c\n"), orphan), 0);
	ck_assert_uint_eq(count_dir("msg"), 3);
	ck_assert_int_eq(ms_spool_clean_links(spool, 3600, err, sizeof(err)), 0);
	sleep(1);
	ck_assert_int_eq(ms_spool_clean_links(spool, 0, err, sizeof(err)), 1);
	ck_assert_uint_eq(count_dir("msg"), 2);
	ms_spool_abort(&open_w);
	ck_assert_uint_eq(count_dir("msg"), 1);
}
END_TEST

/* Spool format 4: references to Maildir files, written by the plugin. */
#define REFS_HDR                                                               \
	MS_SPOOL_MAGIC_REFS "\nX-Mailsift-User: u@x\nX-Mailsift-Class: spam\n" \
	                    "X-Mailsift-Batch: 0000000002\n"                   \
	                    "X-Mailsift-Maildir: /var/vmail/example.test/u/.Junk\n\n"

START_TEST(test_refs_write_read)
{
	static const char want[] = REFS_HDR "=new/1764340000.M123P456.mx,S=977,W=1001\n"
	                                    "=cur/1764340001.M124P456.mx,S=1843,W=1900:2,S\n";
	struct ms_spool_writer *w;
	struct ms_spool_entry entry;
	char err[256], name[256], path[512], buf[1024];
	ssize_t n;
	int fd;

	ck_assert_msg(ms_spool_refs_begin(spool, "u@x", MS_CLASS_SPAM,
	                                  "/var/vmail/example.test/u/.Junk", &w, err,
	                                  sizeof(err)) == 0,
	              "%s", err);
	ck_assert_msg(ms_spool_record_ref(w, "new/1764340000.M123P456.mx,S=977,W=1001", err,
	                                  sizeof(err)) == 0,
	              "%s", err);
	ck_assert_int_eq(ms_spool_record_ref(w, "cur/1764340001.M124P456.mx,S=1843,W=1900:2,S", err,
	                                     sizeof(err)),
	                 0);
	ck_assert_uint_eq(ms_spool_records(w), 2);
	ck_assert(!ms_spool_links_usable(w));
	/* no bytes and no links in a batch of references */
	ck_assert_int_eq(ms_spool_record_begin(w, 1, err, sizeof(err)), -1);
	ck_assert_int_eq(ms_spool_write(w, "x", 1, err, sizeof(err)), -1);
	snprintf(path, sizeof(path), "%s/tmp", spool);
	ck_assert_int_eq(ms_spool_record_link(w, path, err, sizeof(err)), -1);
	ck_assert_uint_eq(ms_spool_records(w), 2);
	ck_assert_msg(ms_spool_commit(&w, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(count_dir("tmp"), 0);

	only_name(name, sizeof(name));
	ck_assert_int_eq(ms_spool_peek_version(spool, name), 4);
	snprintf(path, sizeof(path), "%s/new/%s", spool, name);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_int_eq(n, (ssize_t)sizeof(want) - 1);
	ck_assert(memcmp(buf, want, sizeof(want) - 1) == 0);

	/* parsed alone: the references, never a message */
	ck_assert_int_eq(ms_spool_parse((const unsigned char *)buf, (size_t)n, name, &entry, err,
	                                sizeof(err)),
	                 0);
	ck_assert_uint_eq(entry.version, 4);
	ck_assert_uint_eq(entry.count, 2);
	ck_assert_str_eq(entry.maildir, "/var/vmail/example.test/u/.Junk");
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_ptr_null(entry.msg);
	ck_assert_ptr_null(entry.link_error);
	ck_assert_str_eq(entry.ref, "new/1764340000.M123P456.mx,S=977,W=1001");
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_str_eq(entry.ref, "cur/1764340001.M124P456.mx,S=1843,W=1900:2,S");
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 0);

	/* read from the spool: the files are looked for, and are not there */
	read_only_file(&entry, 1 << 20);
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
	ck_assert_ptr_null(entry.msg);
	ck_assert_ptr_nonnull(strstr(entry.link_error, "gone"));
	ms_spool_entry_free(&entry);

	/* an empty batch of references is dropped */
	ck_assert_int_eq(ms_spool_refs_begin(spool, "u", MS_CLASS_HAM, "/m", &w, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(ms_spool_commit(&w, err, sizeof(err)), 0);
	ck_assert_uint_eq(count_dir("new") + count_dir("tmp"), 1);
	/* references only go into a batch of references */
	ck_assert_int_eq(ms_spool_batch_begin(spool, "u", MS_CLASS_HAM, &w, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_record_ref(w, "new/a", err, sizeof(err)), -1);
	ms_spool_abort(&w);
}
END_TEST

/* The producer refuses what the reader would refuse. */
START_TEST(test_refs_invalid_input)
{
	static const char *const bad_dirs[] = {"",       "/",     "rel/dir", "/a/../b",
	                                       "/a/./b", "/a/",   "/a/..",   "/a/.",
	                                       "/..",    "/a\nb", "/a\x7f"};
	static const char *const bad_refs[] = {"",         "new/",         "tmp/a", "new/a/b",
	                                       "new/.a",   "cur/a b",      "a",     "new",
	                                       "new/a\tb", "cur/\xc3\xa9", "NEW/a"};
	struct ms_spool_writer *w;
	char err[256], long_dir[MS_SPOOL_MAILDIR_MAX + 2], long_ref[MS_SPOOL_REF_PATH_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(bad_dirs) / sizeof(bad_dirs[0]); i++) {
		w = NULL;
		ck_assert_msg(ms_spool_refs_begin(spool, "u", MS_CLASS_SPAM, bad_dirs[i], &w, err,
		                                  sizeof(err)) == -1,
		              "%s", bad_dirs[i]);
		ck_assert_ptr_null(w);
	}
	memset(long_dir, 'd', sizeof(long_dir) - 1);
	long_dir[0] = '/';
	long_dir[MS_SPOOL_MAILDIR_MAX + 1] = '\0';
	ck_assert_int_eq(
	        ms_spool_refs_begin(spool, "u", MS_CLASS_SPAM, long_dir, &w, err, sizeof(err)), -1);
	long_dir[MS_SPOOL_MAILDIR_MAX] = '\0'; /* exactly the limit */
	ck_assert_msg(
	        ms_spool_refs_begin(spool, "u", MS_CLASS_SPAM, long_dir, &w, err, sizeof(err)) == 0,
	        "%s", err);
	for (i = 0; i < sizeof(bad_refs) / sizeof(bad_refs[0]); i++)
		ck_assert_msg(ms_spool_record_ref(w, bad_refs[i], err, sizeof(err)) == -1, "%s",
		              bad_refs[i]);
	memcpy(long_ref, "cur/", 4);
	memset(long_ref + 4, 'n', sizeof(long_ref) - 5);
	long_ref[MS_SPOOL_REF_PATH_MAX + 1] = '\0';
	ck_assert_int_eq(ms_spool_record_ref(w, long_ref, err, sizeof(err)), -1);
	long_ref[MS_SPOOL_REF_PATH_MAX] = '\0';
	ck_assert_int_eq(ms_spool_record_ref(w, long_ref, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_spool_record_ref(w, "new/a:2,S", err, sizeof(err)), 0);
	ck_assert_uint_eq(ms_spool_records(w), 2);
	ck_assert_msg(ms_spool_commit(&w, err, sizeof(err)) == 0, "%s", err);
	{
		struct ms_spool_entry entry;

		read_only_file(&entry, 1 << 20);
		ck_assert_uint_eq(entry.version, 4);
		ck_assert_str_eq(entry.maildir, long_dir);
		entry.spool_dir = NULL; /* do not look for the files */
		ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
		ck_assert_str_eq(entry.ref, long_ref);
		ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 1);
		ck_assert_str_eq(entry.ref, "new/a:2,S");
		ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 0);
		ms_spool_entry_free(&entry);
	}
}
END_TEST

#define HDR4 MS_SPOOL_MAGIC_REFS "\nX-Mailsift-User: u\nX-Mailsift-Class: spam\n"
#define M4   "X-Mailsift-Maildir: /m/d\n"

START_TEST(test_refs_malformed)
{
	static const char *const bad[] = {
	        "1\na\n",    "@a.0\n",     "=\n",    "=new/\n",    "=tmp/a\n",        "=new/a/b\n",
	        "=new/.a\n", "=cur/a b\n", "=new/a", "=new/a\r\n", "=new/\xc3\xa9\n", "= new/a\n"};
	struct ms_spool_entry entry;
	char err[256], text[1024];
	size_t i, len;

	BAD("spam.1", HDR4 "X-Mailsift-Batch: 1\n\n=new/a\n", "lacks X-Mailsift-Maildir");
	BAD("spam.2", HDR4 "X-Mailsift-Batch: 1\nX-Mailsift-Maildir: m/d\n\n=new/a\n",
	    "bad X-Mailsift-Maildir");
	BAD("spam.3", HDR4 "X-Mailsift-Batch: 1\nX-Mailsift-Maildir: /m/../d\n\n=new/a\n",
	    "bad X-Mailsift-Maildir");
	BAD("spam.4", HDR4 "X-Mailsift-Batch: 1\nX-Mailsift-Maildir: /m/d/\n\n=new/a\n",
	    "bad X-Mailsift-Maildir");
	BAD("spam.5", HDR4 "X-Mailsift-Batch: 1\n" M4 M4 "\n=new/a\n", "duplicate");
	BAD("spam.6", HDR4 M4 "\n=new/a\n", "lacks X-Mailsift-Batch");
	BAD("spam.7", HDR4 "X-Mailsift-Batch: 1\nX-Mailsift-Maildir: /m/\x01d\n\n=new/a\n",
	    "control");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = (size_t)snprintf(text, sizeof(text),
		                       HDR4 "X-Mailsift-Batch: 2\n" M4 "\n=new/ok\n%s", bad[i]);
		expect_bad_record("spam.10", text, len, 1, "message 2 of 2: bad reference line");
	}
	len = (size_t)snprintf(text, sizeof(text), HDR4 "X-Mailsift-Batch: 1\n" M4 "\n=new/");
	memset(text + len, 'a', MS_SPOOL_REF_MAX + 1);
	len += MS_SPOOL_REF_MAX + 1;
	text[len++] = '\n';
	expect_bad_record("spam.11", text, len, 0, "bad reference line");
	len = (size_t)snprintf(text, sizeof(text),
	                       HDR4 "X-Mailsift-Batch: 1\n" M4 "\n=new/a\n=new/b\n");
	expect_bad_record("spam.12", text, len, 1, "data after the last");
	/* the Maildir field means nothing before format 4: skipped */
	len = (size_t)snprintf(text, sizeof(text),
	                       MS_SPOOL_MAGIC_LINKS "\nX-Mailsift-User: u\nX-Mailsift-Class: spam\n"
	                                            "X-Mailsift-Batch: 1\n" M4 "\n=new/a\n");
	expect_bad_record("spam.13", text, len, 0, "bad length line");
	write_new("spam.14", HDR4 "X-Mailsift-Batch: 1\n" M4 "\n=cur/a:2,S\n",
	          sizeof(HDR4 "X-Mailsift-Batch: 1\n" M4 "\n=cur/a:2,S\n") - 1);
	ck_assert_int_eq(ms_spool_read(spool, "spam.14", 1 << 20, &entry, err, sizeof(err)),
	                 MS_SPOOL_READ_OK);
	ck_assert_str_eq(entry.maildir, "/m/d");
	ms_spool_entry_free(&entry);
}
END_TEST

/* Pinning: a Maildir in "mail" (new/ and cur/), a format-4 file naming
 * its files, ms_spool_pin(). */
static const char *const pin_texts[] = {"Subject: one\n\nfirst\r\n", "Subject: two\n\n\0second",
                                        "Subject: three\n\nthird\n", "Subject: four\n\n4\n",
                                        "Subject: five\n\n5\n"};
static const char *const pin_refs[] = {"new/1764340000.M1P9.mx,S=20,W=21", "new/1764340001.M2P9.mx",
                                       "cur/1764340002.M3P9.mx:2,S", "new/1764340003.M4P9.mx",
                                       "new/1764340004.M5P9.mx"};

struct gone_calls {
	unsigned int n, index, count;
	char path[512];
};

static void
gone_cb(void *context, unsigned int index, unsigned int count, const char *path)
{
	struct gone_calls *calls = context;

	calls->n++;
	calls->index = index;
	calls->count = count;
	snprintf(calls->path, sizeof(calls->path), "%s", path);
}

/* The Maildir files (pin_texts) and a format-4 file naming the first n;
 * writes the new/ name to name. */
static void
pin_setup(size_t n, char *name, size_t size)
{
	struct ms_spool_writer *w;
	char err[256], path[256];
	size_t i;

	snprintf(path, sizeof(path), "%s/new", mail);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/cur", mail);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(
	        ms_spool_refs_begin(spool, "u@x", MS_CLASS_SPAM, mail, &w, err, sizeof(err)), 0);
	for (i = 0; i < n; i++) {
		/* "\0second": the text up to the NUL, then the rest */
		snprintf(path, sizeof(path), "%s/%s", mail, pin_refs[i]);
		{
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
			size_t len = strlen(pin_texts[i]);

			ck_assert_int_ge(fd, 0);
			ck_assert_int_eq(write(fd, pin_texts[i], len), (ssize_t)len);
			close(fd);
		}
		ck_assert_int_eq(ms_spool_record_ref(w, pin_refs[i], err, sizeof(err)), 0);
	}
	ck_assert_msg(ms_spool_commit(&w, err, sizeof(err)) == 0, "%s", err);
	only_name(name, size);
}

static void
mail_unlink(const char *ref)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", mail, ref);
	ck_assert_int_eq(unlink(path), 0);
}

/* The only file in new/ is format 3 and carries exactly want[] (indexes
 * into pin_texts), byte for byte, with the Maildir emptied. */
static void
expect_pinned(const size_t *want, size_t n)
{
	struct ms_spool_entry entry;
	char err[256];
	size_t i;

	read_only_file(&entry, 1 << 20);
	ck_assert_uint_eq(entry.version, 3);
	ck_assert_uint_eq(entry.count, n);
	for (i = 0; i < n; i++) {
		ck_assert_msg(ms_spool_next(&entry, err, sizeof(err)) == 1, "%s", err);
		ck_assert_str_ne(entry.link, "");
		ck_assert_ptr_nonnull(entry.msg);
		ck_assert_uint_eq(entry.size, strlen(pin_texts[want[i]]));
		ck_assert(memcmp(entry.msg, pin_texts[want[i]], entry.size) == 0);
	}
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 0);
	ms_spool_entry_free(&entry);
}

/* Renamed files are found, expunged ones reported and left out; what is
 * pinned outlives the Maildir. */
START_TEST(test_pin)
{
	static const size_t want[] = {0, 1, 2, 3};
	struct gone_calls calls = {0};
	unsigned int pinned, count;
	char err[256], name[256], from[256], to[256];
	size_t i;

	pin_setup(5, name, sizeof(name));
	/* Dovecot: a flag set (new/ -> cur/<base>:2,S), one message expunged */
	snprintf(from, sizeof(from), "%s/%s", mail, pin_refs[3]);
	snprintf(to, sizeof(to), "%s/cur/%s:2,S", mail, pin_refs[3] + 4);
	ck_assert_int_eq(rename(from, to), 0);
	mail_unlink(pin_refs[4]);
	/* a decoy: the same prefix, another base */
	snprintf(to, sizeof(to), "%s/cur/%sX:2,S", mail, pin_refs[1] + 4);
	ck_assert_int_eq(link(mail_file("decoy", "decoy"), to), 0);

	ck_assert_int_eq(
	        ms_spool_pin(spool, name, gone_cb, &calls, &pinned, &count, err, sizeof(err)),
	        MS_SPOOL_PIN_DONE);
	ck_assert_uint_eq(pinned, 4);
	ck_assert_uint_eq(count, 5);
	ck_assert_uint_eq(calls.n, 1);
	ck_assert_uint_eq(calls.index, 5);
	ck_assert_uint_eq(calls.count, 5);
	snprintf(to, sizeof(to), "%s/%s", mail, pin_refs[4]);
	ck_assert_str_eq(calls.path, to);
	ck_assert_int_eq(ms_spool_peek_version(spool, name), 3);
	ck_assert_uint_eq(count_dir("msg"), 4);
	ck_assert_uint_eq(count_dir("tmp"), 0);
	/* the user expunges everything: the pinned messages stay */
	for (i = 0; i < 3; i++)
		mail_unlink(pin_refs[i]);
	expect_pinned(want, 4);
	/* pinned links are kept as long as their manifest is in new/ */
	ck_assert_int_eq(ms_spool_clean_links(spool, 0, err, sizeof(err)), 0);
	/* format 3 now: nothing more to do */
	ck_assert_int_eq(ms_spool_pin(spool, name, NULL, NULL, &pinned, NULL, err, sizeof(err)),
	                 MS_SPOOL_PIN_NONE);
	ck_assert_uint_eq(pinned, 0);
}
END_TEST

/* A pin that died half-way (links made, the manifest still format 4) is
 * done again from the start: the links it made are kept, even of a
 * message expunged since. */
START_TEST(test_pin_after_crash)
{
	static const size_t want[] = {0, 1, 2};
	char err[256], name[256], src[256], dst[256];
	unsigned int pinned;

	pin_setup(3, name, sizeof(name));
	snprintf(src, sizeof(src), "%s/%s", mail, pin_refs[0]);
	snprintf(dst, sizeof(dst), "%s/msg/%s.0", spool, strchr(name, '.') + 1);
	ck_assert_int_eq(link(src, dst), 0);
	snprintf(src, sizeof(src), "%s/%s", mail, pin_refs[1]);
	snprintf(dst, sizeof(dst), "%s/msg/%s.1", spool, strchr(name, '.') + 1);
	ck_assert_int_eq(link(src, dst), 0);
	/* and the manifest it was writing */
	snprintf(dst, sizeof(dst), "%s/tmp/%s", spool, strchr(name, '.') + 1);
	ck_assert_int_eq(link(mail_file("junk", "half a manifest"), dst), 0);
	mail_unlink(pin_refs[0]);
	ck_assert_int_eq(ms_spool_peek_version(spool, name), 4);

	ck_assert_int_eq(ms_spool_pin(spool, name, NULL, NULL, &pinned, NULL, err, sizeof(err)),
	                 MS_SPOOL_PIN_DONE);
	ck_assert_uint_eq(pinned, 3);
	ck_assert_uint_eq(count_dir("msg"), 3);
	ck_assert_uint_eq(count_dir("tmp"), 0);
	mail_unlink(pin_refs[1]);
	mail_unlink(pin_refs[2]);
	expect_pinned(want, 3);
}
END_TEST

/* Not format 4, gone, all expunged, malformed. */
START_TEST(test_pin_nothing_to_pin)
{
	struct gone_calls calls = {0};
	unsigned int pinned = 9, count = 9;
	char err[256], name[256];

	ck_assert_int_eq(ms_spool_pin(spool, "spam.no-such-file", NULL, NULL, &pinned, &count, err,
	                              sizeof(err)),
	                 MS_SPOOL_PIN_NONE);
	ck_assert_uint_eq(pinned + count, 0);
	ck_assert_int_eq(ms_spool_submit(spool, "u", MS_CLASS_SPAM, "m", 1, err, sizeof(err)), 0);
	only_name(name, sizeof(name));
	ck_assert_int_eq(ms_spool_pin(spool, name, NULL, NULL, NULL, NULL, err, sizeof(err)),
	                 MS_SPOOL_PIN_NONE);
	ck_assert_int_eq(ms_spool_peek_version(spool, name), 1);
	ck_assert_int_eq(ms_spool_remove(spool, name, err, sizeof(err)), 0);

	/* every message expunged before the pin: nothing left to learn */
	pin_setup(2, name, sizeof(name));
	mail_unlink(pin_refs[0]);
	mail_unlink(pin_refs[1]);
	ck_assert_int_eq(
	        ms_spool_pin(spool, name, gone_cb, &calls, &pinned, &count, err, sizeof(err)),
	        MS_SPOOL_PIN_DONE);
	ck_assert_uint_eq(pinned, 0);
	ck_assert_uint_eq(count, 2);
	ck_assert_uint_eq(calls.n, 2);
	ck_assert_uint_eq(count_dir("new") + count_dir("msg") + count_dir("tmp"), 0);

	/* a malformed reference: the file goes to bad/ whole, nothing linked */
	write_new("spam.1.x", HDR4 "X-Mailsift-Batch: 2\n" M4 "\n=new/a\n=new/../x\n",
	          sizeof(HDR4 "X-Mailsift-Batch: 2\n" M4 "\n=new/a\n=new/../x\n") - 1);
	ck_assert_int_eq(ms_spool_pin(spool, "spam.1.x", NULL, NULL, NULL, NULL, err, sizeof(err)),
	                 MS_SPOOL_PIN_BAD);
	ck_assert_ptr_nonnull(strstr(err, "bad reference line"));
	write_new("spam.2.x", HDR4 "X-Mailsift-Batch: 1\n\n=new/a\n",
	          sizeof(HDR4 "X-Mailsift-Batch: 1\n\n=new/a\n") - 1);
	ck_assert_int_eq(ms_spool_pin(spool, "spam.2.x", NULL, NULL, NULL, NULL, err, sizeof(err)),
	                 MS_SPOOL_PIN_BAD);
	ck_assert_ptr_nonnull(strstr(err, "lacks X-Mailsift-Maildir"));
	ck_assert_uint_eq(count_dir("msg"), 0);
}
END_TEST

/* No link possible (here: no msg/): the file stays format 4 and is read
 * from the Maildir directly, renamed files found. */
START_TEST(test_pin_unlinkable_reads_maildir)
{
	struct ms_spool_entry entry;
	char err[256], name[256], from[256], to[256];
	unsigned int pinned;
	size_t i;

	pin_setup(3, name, sizeof(name));
	snprintf(from, sizeof(from), "%s/msg", spool);
	ck_assert_int_eq(rmdir(from), 0);
	snprintf(from, sizeof(from), "%s/%s", mail, pin_refs[0]);
	snprintf(to, sizeof(to), "%s/cur/%s:2,ST", mail, pin_refs[0] + 4);
	ck_assert_int_eq(rename(from, to), 0);
	mail_unlink(pin_refs[1]);
	ck_assert_int_eq(ms_spool_pin(spool, name, NULL, NULL, &pinned, NULL, err, sizeof(err)),
	                 MS_SPOOL_PIN_UNLINKABLE);
	ck_assert_uint_eq(pinned, 0);
	ck_assert_int_eq(ms_spool_peek_version(spool, name), 4);
	read_only_file(&entry, 1 << 20);
	for (i = 0; i < 3; i++) {
		ck_assert_msg(ms_spool_next(&entry, err, sizeof(err)) == 1, "%s", err);
		ck_assert_str_eq(entry.ref, pin_refs[i]);
		if (i == 1) {
			ck_assert_ptr_null(entry.msg);
			ck_assert_ptr_nonnull(strstr(entry.link_error, "gone"));
			continue;
		}
		ck_assert_ptr_nonnull(entry.msg);
		ck_assert_uint_eq(entry.size, strlen(pin_texts[i]));
		ck_assert(memcmp(entry.msg, pin_texts[i], entry.size) == 0);
	}
	ck_assert_int_eq(ms_spool_next(&entry, err, sizeof(err)), 0);
	/* the Maildir's files are Dovecot's: never removed by the learner */
	ck_assert_int_eq(ms_spool_remove_links(spool, &entry, err, sizeof(err)), 0);
	ms_spool_entry_free(&entry);
	snprintf(from, sizeof(from), "%s/%s", mail, pin_refs[2]);
	ck_assert_int_eq(access(to, F_OK) + access(from, F_OK), 0);
}
END_TEST

static Suite *
spool_suite(void)
{
	Suite *s = suite_create("spool");
	TCase *tc = tcase_create("spool");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_submit_and_read);
	tcase_add_test(tc, test_chunks_commit_abort);
	tcase_add_test(tc, test_commit_many);
	tcase_add_test(tc, test_batch_write_read);
	tcase_add_test(tc, test_single_file_next);
	tcase_add_test(tc, test_batch_empty_and_abort);
	tcase_add_test(tc, test_batch_write_failure);
	tcase_add_test(tc, test_batch_full_and_read_limit);
	tcase_add_test(tc, test_batch_malformed);
	tcase_add_test(tc, test_write_fd);
	tcase_add_test(tc, test_list_order_unique);
	tcase_add_test(tc, test_bad_user);
	tcase_add_test(tc, test_missing_spool);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_unknown_field_skipped);
	tcase_add_test(tc, test_too_big_and_not_regular);
	tcase_add_test(tc, test_clean_tmp);
	tcase_add_test(tc, test_poke);
	suite_add_tcase(s, tc);

	tc = tcase_create("links");
	tcase_add_checked_fixture(tc, setup_links, teardown_links);
	tcase_add_test(tc, test_mixed_batch);
	tcase_add_test(tc, test_no_link_dir_or_source);
	tcase_add_test(tc, test_rollback);
	tcase_add_test(tc, test_missing_and_too_big);
	tcase_add_test(tc, test_out_of_fds);
	tcase_add_test(tc, test_malformed_links);
	tcase_add_test(tc, test_clean_links);
	tcase_add_test(tc, test_refs_write_read);
	tcase_add_test(tc, test_refs_invalid_input);
	tcase_add_test(tc, test_refs_malformed);
	tcase_add_test(tc, test_pin);
	tcase_add_test(tc, test_pin_after_crash);
	tcase_add_test(tc, test_pin_nothing_to_pin);
	tcase_add_test(tc, test_pin_unlinkable_reads_maildir);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return ms_test_run(spool_suite());
}
