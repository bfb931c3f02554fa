/* Spool producers: write tmp/<unique>, publish as new/<class>.<unique>. */
#include "ms-spool.h"
#include "ms-util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define WRITER_BUF_SIZE 65536
/* "X-Mailsift-Batch: " and a count as wide as UINT_MAX, filled in by the
 * commit: the header's length never changes. */
#define BATCH_COUNT_FMT   "%010u"
#define BATCH_COUNT_WIDTH 10
/* Where the version digit of the first line is: a batch that made links
 * becomes format 3 at the commit, one that did not stays format 2. */
#define MAGIC_VERSION_OFFSET (sizeof(MS_SPOOL_MAGIC) - 2)

struct ms_spool_writer {
	int fd;
	enum ms_class cls;
	bool batch;
	bool refs; /* a batch of Maildir references (format 4) only */
	bool in_record;
	/* A write failed part-way: what is on disk is unknown, so the file
	   can only be dropped. */
	bool broken;
	unsigned int records;
	unsigned int links; /* msg/<unique>.0 .. .<links - 1> */
	/* 0: msg/ not looked at yet, 1: links work, -1: copy instead */
	int link_state;
	int link_fd;        /* msg/, open while links are made: no path walk per link */
	off_t count_offset; /* where the header's count digits are */
	off_t size;         /* the file's length, buffered bytes included */
	off_t rec_start;    /* the current record's length line */
	size_t rec_want, rec_have;
	size_t buf_len;
	char tmp_path[PATH_MAX];
	char new_path[PATH_MAX];
	char new_dir[PATH_MAX];
	char link_dir[PATH_MAX];
	char unique[160];
	/* A MOVE of 1,000 small messages is three writes per message
	   unbuffered; buffered, a write per 64 KB. */
	char buf[WRITER_BUF_SIZE];
};

/* Names must differ between calls in one process within one microsecond
 * (the plugin may spool a whole MOVE of many messages): a process-wide
 * counter, like Maildir's Q<n>. */
static unsigned int ms_spool_counter;

const char *
ms_spool_class_name(enum ms_class cls)
{
	return cls == MS_CLASS_SPAM ? "spam" : "ham";
}

int
ms_spool_class_parse(const char *name, enum ms_class *cls_r)
{
	if (strcmp(name, "spam") == 0)
		*cls_r = MS_CLASS_SPAM;
	else if (strcmp(name, "ham") == 0)
		*cls_r = MS_CLASS_HAM;
	else
		return -1;
	return 0;
}

/* The host part of a unique name: no '/' or '.', nothing unprintable. */
static void
spool_hostname(char *buf, size_t size)
{
	char *p;

	if (gethostname(buf, size) < 0 || buf[0] == '\0')
		snprintf(buf, size, "localhost");
	buf[size - 1] = '\0';
	for (p = buf; *p != '\0'; p++) {
		if (*p == '/' || *p == '.' || (unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			*p = '_';
	}
}

/* <sec>.<usec>.<pid>.<counter>.<host>: fixed-width time first, so sorting
 * the names sorts by age (for the next 260 years). */
static void
spool_unique(char *buf, size_t size)
{
	struct timeval tv;
	char host[64];

	gettimeofday(&tv, NULL);
	spool_hostname(host, sizeof(host));
	snprintf(buf, size, "%010lld.%06ld.%ld.%u.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
	         (long)getpid(), ms_spool_counter++, host);
}

static int
valid_user(const char *user)
{
	const unsigned char *p;

	if (strlen(user) > MS_SPOOL_USER_MAX)
		return 0;
	for (p = (const unsigned char *)user; *p != '\0'; p++) {
		if (*p < ' ' || *p == 0x7f)
			return 0;
	}
	return 1;
}

/* Opens a fresh tmp/ file; a clash (pid reuse) just takes the next name. */
static int
open_tmp(struct ms_spool_writer *w, const char *spool_dir, char *err, size_t errlen)
{
	int tries, len;

	snprintf(w->new_dir, sizeof(w->new_dir), "%s/new", spool_dir);
	snprintf(w->link_dir, sizeof(w->link_dir), "%s/" MS_SPOOL_LINK_DIR, spool_dir);
	for (tries = 0; tries < 100; tries++) {
		spool_unique(w->unique, sizeof(w->unique));
		snprintf(w->tmp_path, sizeof(w->tmp_path), "%s/tmp/%s", spool_dir, w->unique);
		/* the longest of the three paths */
		len = snprintf(w->new_path, sizeof(w->new_path), "%s/%s.%s", w->new_dir,
		               ms_spool_class_name(w->cls), w->unique);
		if (len < 0 || (size_t)len >= sizeof(w->new_path))
			return ms_error(err, errlen, "%s: spool path too long", spool_dir);
		w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (w->fd >= 0)
			return 0;
		if (errno != EEXIST)
			return ms_error(err, errlen, "open(%s): %s", w->tmp_path, strerror(errno));
	}
	return ms_error(err, errlen, "%s/tmp: no unique name found", spool_dir);
}

static int
writer_failed(struct ms_spool_writer *w, char *err, size_t errlen)
{
	w->broken = true;
	return ms_error(err, errlen, "write(%s): %s", w->tmp_path, strerror(errno));
}

static int
writer_flush(struct ms_spool_writer *w, char *err, size_t errlen)
{
	if (w->buf_len > 0 && ms_write_all(w->fd, w->buf, w->buf_len) < 0)
		return writer_failed(w, err, errlen);
	w->buf_len = 0;
	return 0;
}

static int
writer_out(struct ms_spool_writer *w, const void *data, size_t size, char *err, size_t errlen)
{
	if (w->broken)
		return ms_error(err, errlen, "%s: an earlier write failed", w->tmp_path);
	if (w->buf_len + size > sizeof(w->buf) && writer_flush(w, err, errlen) < 0)
		return -1;
	if (size >= sizeof(w->buf)) {
		if (ms_write_all(w->fd, data, size) < 0)
			return writer_failed(w, err, errlen);
	} else {
		memcpy(w->buf + w->buf_len, data, size);
		w->buf_len += size;
	}
	w->size += (off_t)size;
	return 0;
}

bool
ms_spool_maildir_valid(const char *maildir, size_t len)
{
	const unsigned char *p = (const unsigned char *)maildir;
	size_t i, start = 1;

	if (len < 2 || len > MS_SPOOL_MAILDIR_MAX || p[0] != '/' || p[len - 1] == '/')
		return false;
	for (i = 1; i <= len; i++) {
		if (i < len && (p[i] < ' ' || p[i] == 0x7f))
			return false;
		if (i < len && p[i] != '/')
			continue;
		/* the component p[start .. i): never "." or ".." */
		if ((i - start == 1 && p[start] == '.') ||
		    (i - start == 2 && p[start] == '.' && p[start + 1] == '.'))
			return false;
		start = i + 1;
	}
	return true;
}

bool
ms_spool_ref_valid(const char *ref, size_t len)
{
	const unsigned char *p = (const unsigned char *)ref + 4;
	size_t i;

	if (len <= 4 || len > MS_SPOOL_REF_PATH_MAX ||
	    (memcmp(ref, "new/", 4) != 0 && memcmp(ref, "cur/", 4) != 0) || p[0] == '.')
		return false;
	for (i = 0; i < len - 4; i++) {
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == '/')
			return false;
	}
	return true;
}

static const char *
writer_magic(const struct ms_spool_writer *w)
{
	if (w->refs)
		return MS_SPOOL_MAGIC_REFS;
	return w->batch ? MS_SPOOL_MAGIC_BATCH : MS_SPOOL_MAGIC;
}

size_t
ms_spool_header(char *buf, size_t size, const char *magic, const char *user, enum ms_class cls,
                bool batch, const char *maildir, size_t *count_off_r)
{
	int len;

	len = snprintf(buf, size, "%s\nX-Mailsift-User: %s\nX-Mailsift-Class: %s\n", magic, user,
	               ms_spool_class_name(cls));
	if (batch)
		len += snprintf(buf + len, size - (size_t)len,
		                "X-Mailsift-Batch: " BATCH_COUNT_FMT "\n", 0u);
	*count_off_r = (size_t)len - BATCH_COUNT_WIDTH - 1;
	if (maildir != NULL)
		len += snprintf(buf + len, size - (size_t)len, "X-Mailsift-Maildir: %s\n", maildir);
	buf[len++] = '\n';
	return (size_t)len;
}

/* maildir: NULL, or the Maildir of a batch of references (format 4). */
static int
writer_start(const char *spool_dir, const char *user, enum ms_class cls, bool batch,
             const char *maildir, struct ms_spool_writer **writer_r, char *err, size_t errlen)
{
	struct ms_spool_writer *w;
	char header[MS_SPOOL_HEADER_MAX];
	size_t len, count_off;

	if (!valid_user(user))
		return ms_error(err, errlen, "invalid user name for the spool");
	if (maildir != NULL && !ms_spool_maildir_valid(maildir, strlen(maildir)))
		return ms_error(err, errlen, "invalid Maildir path for the spool");
	/* Not calloc: zeroing the paths and the buffer per message was a
	   tenth of the plugin's CPU time in a 1,000-message MOVE. */
	if ((w = malloc(sizeof(*w))) == NULL)
		return ms_error(err, errlen, "out of memory");
	w->fd = -1;
	w->cls = cls;
	w->batch = batch;
	w->refs = maildir != NULL;
	w->in_record = false;
	w->broken = false;
	w->records = 0;
	w->links = 0;
	w->link_state = 0;
	w->link_fd = -1;
	w->size = 0;
	w->buf_len = 0;
	if (open_tmp(w, spool_dir, err, errlen) < 0) {
		free(w);
		return -1;
	}
	len = ms_spool_header(header, sizeof(header), writer_magic(w), user, cls, batch, maildir,
	                      &count_off);
	w->count_offset = (off_t)count_off;
	if (writer_out(w, header, len, err, errlen) < 0) {
		ms_spool_abort(&w);
		return -1;
	}
	*writer_r = w;
	return 0;
}

int
ms_spool_begin(const char *spool_dir, const char *user, enum ms_class cls,
               struct ms_spool_writer **writer_r, char *err, size_t errlen)
{
	return writer_start(spool_dir, user, cls, false, NULL, writer_r, err, errlen);
}

int
ms_spool_batch_begin(const char *spool_dir, const char *user, enum ms_class cls,
                     struct ms_spool_writer **writer_r, char *err, size_t errlen)
{
	return writer_start(spool_dir, user, cls, true, NULL, writer_r, err, errlen);
}

int
ms_spool_refs_begin(const char *spool_dir, const char *user, enum ms_class cls, const char *maildir,
                    struct ms_spool_writer **writer_r, char *err, size_t errlen)
{
	return writer_start(spool_dir, user, cls, true, maildir, writer_r, err, errlen);
}

int
ms_spool_record_ref(struct ms_spool_writer *w, const char *ref, char *err, size_t errlen)
{
	char line[MS_SPOOL_REF_PATH_MAX + 3];
	size_t len = strlen(ref);

	if (!w->refs || w->in_record)
		return ms_error(err, errlen, "no references into this spool file");
	if (!ms_spool_ref_valid(ref, len))
		return ms_error(err, errlen, "invalid Maildir reference for the spool");
	line[0] = '=';
	memcpy(line + 1, ref, len);
	line[len + 1] = '\n';
	if (writer_out(w, line, len + 2, err, errlen) < 0)
		return -1;
	w->records++;
	return 0;
}

int
ms_spool_write(struct ms_spool_writer *writer, const void *data, size_t size, char *err,
               size_t errlen)
{
	/* a batch of references carries no message bytes */
	if (writer->refs)
		return ms_error(err, errlen, "no message bytes into a spool file of references");
	if (writer->in_record)
		writer->rec_have += size;
	return writer_out(writer, data, size, err, errlen);
}

int
ms_spool_write_fd(struct ms_spool_writer *writer, int fd, char *err, size_t errlen)
{
	char buf[65536];
	ssize_t ret;

	for (;;) {
		ret = read(fd, buf, sizeof(buf));
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return ms_error(err, errlen, "read: %s", strerror(errno));
		if (ret == 0)
			return 0;
		if (ms_spool_write(writer, buf, (size_t)ret, err, errlen) < 0)
			return -1;
	}
}

int
ms_spool_record_begin(struct ms_spool_writer *writer, size_t size, char *err, size_t errlen)
{
	char line[32];
	int len;

	if (!writer->batch || writer->refs || writer->in_record || size == 0)
		return ms_error(err, errlen, "spool record of %zu bytes out of place", size);
	len = snprintf(line, sizeof(line), "%zu\n", size);
	writer->rec_start = writer->size;
	if (writer_out(writer, line, (size_t)len, err, errlen) < 0)
		return -1;
	writer->in_record = true;
	writer->rec_want = size;
	writer->rec_have = 0;
	return 0;
}

/* The name of link n in msg/. */
static void
link_name(const struct ms_spool_writer *w, unsigned int n, char *buf, size_t size)
{
	snprintf(buf, size, "%s.%u", w->unique, n);
}

/* msg/ exists (a learner that knows format 3 made it): opened once. */
static bool
links_checked(struct ms_spool_writer *w)
{
	if (w->link_state == 0) {
		w->link_fd = open(w->link_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		w->link_state = w->link_fd >= 0 ? 1 : -1;
	}
	return w->link_state > 0;
}

static void
writer_free(struct ms_spool_writer *w)
{
	if (w->link_fd >= 0)
		(void)close(w->link_fd);
	free(w);
}

int
ms_spool_record_link(struct ms_spool_writer *w, const char *src_path, char *err, size_t errlen)
{
	char name[MS_SPOOL_LINK_MAX + 1], line[MS_SPOOL_LINK_MAX + 3];
	int len, error;

	if (!w->batch || w->refs || w->in_record || w->broken || !links_checked(w))
		return ms_error(err, errlen, "%s: no links into this spool file", w->link_dir);
	link_name(w, w->links, name, sizeof(name));
	if (linkat(AT_FDCWD, src_path, w->link_fd, name, 0) < 0) {
		error = errno;
		if (error == ENOENT)
			return 0;
		/* the same for every message: stop trying */
		if (error == EXDEV || error == EPERM || error == EMLINK || error == EACCES ||
		    error == EROFS)
			w->link_state = -1;
		return ms_error(err, errlen, "link(%s, %s/%s): %s", src_path, w->link_dir, name,
		                strerror(error));
	}
	len = snprintf(line, sizeof(line), "@%s\n", name);
	if (writer_out(w, line, (size_t)len, err, errlen) < 0) {
		(void)unlinkat(w->link_fd, name, 0);
		return -1;
	}
	w->links++;
	w->records++;
	return 1;
}

bool
ms_spool_links_usable(const struct ms_spool_writer *writer)
{
	return writer->batch && !writer->refs && writer->link_state >= 0;
}

int
ms_spool_record_abort(struct ms_spool_writer *w, char *err, size_t errlen)
{
	off_t flushed = w->size - (off_t)w->buf_len;

	if (!w->in_record && !w->broken)
		return 0;
	w->in_record = false;
	if (w->broken)
		return ms_error(err, errlen, "%s: an earlier write failed", w->tmp_path);
	if (w->rec_start >= flushed) {
		w->buf_len = (size_t)(w->rec_start - flushed);
	} else {
		w->buf_len = 0;
		if (ftruncate(w->fd, w->rec_start) < 0 ||
		    lseek(w->fd, w->rec_start, SEEK_SET) != w->rec_start) {
			w->broken = true;
			return ms_error(err, errlen, "truncate(%s): %s", w->tmp_path,
			                strerror(errno));
		}
	}
	w->size = w->rec_start;
	return 0;
}

int
ms_spool_record_end(struct ms_spool_writer *writer, char *err, size_t errlen)
{
	size_t want = writer->rec_want, have = writer->rec_have;

	if (!writer->in_record)
		return ms_error(err, errlen, "spool record ended without a beginning");
	if (have != want) {
		if (ms_spool_record_abort(writer, err, errlen) < 0)
			return -1;
		return ms_error(err, errlen, "message was %zu bytes, not the %zu announced", have,
		                want);
	}
	writer->in_record = false;
	if (writer_out(writer, "\n", 1, err, errlen) < 0)
		return -1;
	writer->records++;
	return 0;
}

unsigned int
ms_spool_records(const struct ms_spool_writer *writer)
{
	return writer->records;
}

bool
ms_spool_batch_full(const struct ms_spool_writer *writer)
{
	return writer->size >= (off_t)MS_SPOOL_BATCH_ROLL;
}

/* Everything written and durable; the count of a batch filled in; closed.
 * Returns 1 when there is something to publish, 0 for an empty batch. */
static int
writer_seal(struct ms_spool_writer *w, char *err, size_t errlen)
{
	char count[BATCH_COUNT_WIDTH + 1];
	const char *what = NULL;
	int fd = w->fd;

	/* an unfinished record is dropped, the finished ones kept */
	if (ms_spool_record_abort(w, err, errlen) < 0)
		return -1;
	if (w->batch && w->records == 0)
		return 0;
	if (writer_flush(w, err, errlen) < 0)
		return -1;
	if (w->batch) {
		snprintf(count, sizeof(count), BATCH_COUNT_FMT, w->records);
		if (pwrite(fd, count, BATCH_COUNT_WIDTH, w->count_offset) != BATCH_COUNT_WIDTH ||
		    (w->links > 0 && pwrite(fd, "3", 1, MAGIC_VERSION_OFFSET) != 1))
			what = "pwrite";
		/* the file's size is the only metadata that matters */
		else if (fdatasync(fd) < 0)
			what = "fdatasync";
	} else if (fsync(fd) < 0) {
		what = "fsync";
	}
	w->fd = -1;
	if (close(fd) < 0 && what == NULL)
		what = "close";
	if (what != NULL)
		return ms_error(err, errlen, "%s(%s): %s", what, w->tmp_path, strerror(errno));
	return 1;
}

int
ms_spool_commit(struct ms_spool_writer **writer, char *err, size_t errlen)
{
	return ms_spool_commit_many(writer, 1, err, errlen);
}

/* Drops writers[i] after a failure, keeping the first error in err. */
static void
commit_failed(struct ms_spool_writer **writers, size_t i, const char *why, int *ret, char *err,
              size_t errlen)
{
	if (*ret == 0)
		*ret = ms_error(err, errlen, "%s", why);
	ms_spool_abort(&writers[i]);
}

/* One fsync of msg/ for all the writers that made links (they share the
 * spool); the ones with links are dropped if it fails. */
static void
links_sync(struct ms_spool_writer **writers, size_t count, int *ret, char *err, size_t errlen)
{
	char why[512];
	int synced = 0;
	size_t i;

	for (i = 0; i < count; i++) {
		if (writers[i] == NULL || writers[i]->links == 0)
			continue;
		if (synced == 0)
			synced = fsync(writers[i]->link_fd) < 0 ? -1 : 1;
		if (synced < 0) {
			ms_error(why, sizeof(why), "fsync(%s): %s", writers[i]->link_dir,
			         strerror(errno));
			commit_failed(writers, i, why, ret, err, errlen);
		}
	}
}

int
ms_spool_commit_many(struct ms_spool_writer **writers, size_t count, char *err, size_t errlen)
{
	const char *new_dir = NULL;
	char dir[PATH_MAX], why[512];
	int ret = 0, sealed;
	size_t i;

	for (i = 0; i < count; i++) {
		if ((sealed = writer_seal(writers[i], why, sizeof(why))) < 0)
			commit_failed(writers, i, why, &ret, err, errlen);
		else if (sealed == 0)
			ms_spool_abort(&writers[i]);
	}
	/* The links must be durable before a manifest naming them is
	   published. After the manifests' fdatasync, which on a journaling
	   file system usually committed the links too, this one is cheap. */
	links_sync(writers, count, &ret, err, errlen);
	for (i = 0; i < count; i++) {
		if (writers[i] == NULL)
			continue;
		if (rename(writers[i]->tmp_path, writers[i]->new_path) < 0) {
			ms_error(why, sizeof(why), "rename(%s, %s): %s", writers[i]->tmp_path,
			         writers[i]->new_path, strerror(errno));
			commit_failed(writers, i, why, &ret, err, errlen);
			continue;
		}
		snprintf(dir, sizeof(dir), "%s", writers[i]->new_dir);
		new_dir = dir;
		writer_free(writers[i]);
		writers[i] = NULL;
	}
	/* Published: from here on only the directory entries' durability is
	   at stake, and the files stay for the learner whatever we return. */
	if (new_dir != NULL && ms_fsync_dir(new_dir) < 0 && ret == 0)
		ret = ms_error(err, errlen, "fsync(%s): %s", new_dir, strerror(errno));
	return ret;
}

void
ms_spool_abort(struct ms_spool_writer **writer)
{
	struct ms_spool_writer *w = *writer;
	char name[MS_SPOOL_LINK_MAX + 1];
	unsigned int i;

	if (w == NULL)
		return;
	if (w->fd >= 0)
		(void)close(w->fd);
	(void)unlink(w->tmp_path);
	for (i = 0; i < w->links; i++) {
		link_name(w, i, name, sizeof(name));
		(void)unlinkat(w->link_fd, name, 0);
	}
	writer_free(w);
	*writer = NULL;
}

int
ms_spool_submit(const char *spool_dir, const char *user, enum ms_class cls, const void *msg,
                size_t size, char *err, size_t errlen)
{
	struct ms_spool_writer *w;

	if (ms_spool_begin(spool_dir, user, cls, &w, err, errlen) < 0)
		return -1;
	if (ms_spool_write(w, msg, size, err, errlen) < 0) {
		ms_spool_abort(&w);
		return -1;
	}
	return ms_spool_commit(&w, err, errlen);
}

int
ms_spool_learner_connect(const char *learner_socket)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(learner_socket) >= sizeof(sun.sun_path))
		return -1;
	strcpy(sun.sun_path, learner_socket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	/* A full backlog gives EAGAIN at once: counted as no learner. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		(void)close(fd);
		return -1;
	}
	return fd;
}

int
ms_spool_poke_fd(int fd)
{
	static const char line[] = "POKE\n";
	int ret = -1;

	if (send(fd, line, sizeof(line) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	    (ssize_t)(sizeof(line) - 1))
		ret = 0;
	(void)close(fd);
	return ret;
}

int
ms_spool_poke(const char *learner_socket)
{
	int fd = ms_spool_learner_connect(learner_socket);

	return fd < 0 ? -1 : ms_spool_poke_fd(fd);
}
