/* Spool producers: write tmp/<unique>, publish as new/<class>.<unique>. */
/* syncfs(2) is a GNU extension */
#define _GNU_SOURCE
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

struct ms_spool_writer {
	int fd;
	enum ms_class cls;
	char tmp_path[PATH_MAX];
	char new_path[PATH_MAX];
	char new_dir[PATH_MAX];
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

static int
write_all(int fd, const void *data, size_t size)
{
	const char *p = data;
	ssize_t ret;

	while (size > 0) {
		ret = write(fd, p, size);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -1;
		p += ret;
		size -= (size_t)ret;
	}
	return 0;
}

/* Opens a fresh tmp/ file; a clash (pid reuse) just takes the next name. */
static int
open_tmp(struct ms_spool_writer *w, const char *spool_dir, char *err, size_t errlen)
{
	char unique[160];
	int tries, len;

	snprintf(w->new_dir, sizeof(w->new_dir), "%s/new", spool_dir);
	for (tries = 0; tries < 100; tries++) {
		spool_unique(unique, sizeof(unique));
		snprintf(w->tmp_path, sizeof(w->tmp_path), "%s/tmp/%s", spool_dir, unique);
		/* the longest of the three paths */
		len = snprintf(w->new_path, sizeof(w->new_path), "%s/%s.%s", w->new_dir,
		               ms_spool_class_name(w->cls), unique);
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

int
ms_spool_begin(const char *spool_dir, const char *user, enum ms_class cls,
               struct ms_spool_writer **writer_r, char *err, size_t errlen)
{
	struct ms_spool_writer *w;
	char header[MS_SPOOL_HEADER_MAX];
	int len;

	if (!valid_user(user))
		return ms_error(err, errlen, "invalid user name for the spool");
	/* Not calloc: zeroing three PATH_MAX buffers per message was a tenth
	 * of the plugin's CPU time in a 1,000-message MOVE; open_tmp() sets
	 * every field. */
	if ((w = malloc(sizeof(*w))) == NULL)
		return ms_error(err, errlen, "out of memory");
	w->fd = -1;
	w->cls = cls;
	if (open_tmp(w, spool_dir, err, errlen) < 0) {
		free(w);
		return -1;
	}
	len = snprintf(header, sizeof(header),
	               MS_SPOOL_MAGIC "\nX-Mailsift-User: %s\nX-Mailsift-Class: %s\n\n", user,
	               ms_spool_class_name(cls));
	if (write_all(w->fd, header, (size_t)len) < 0) {
		ms_error(err, errlen, "write(%s): %s", w->tmp_path, strerror(errno));
		ms_spool_abort(&w);
		return -1;
	}
	*writer_r = w;
	return 0;
}

int
ms_spool_write(struct ms_spool_writer *writer, const void *data, size_t size, char *err,
               size_t errlen)
{
	if (write_all(writer->fd, data, size) < 0)
		return ms_error(err, errlen, "write(%s): %s", writer->tmp_path, strerror(errno));
	return 0;
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
ms_spool_commit(struct ms_spool_writer **writer, char *err, size_t errlen)
{
	struct ms_spool_writer *w = *writer;
	const char *what = NULL;
	int fd = w->fd, ret = 0;

	w->fd = -1;
	if (fsync(fd) < 0)
		what = "fsync";
	if (close(fd) < 0 && what == NULL)
		what = "close";
	if (what == NULL && rename(w->tmp_path, w->new_path) < 0)
		what = "rename";
	if (what != NULL) {
		ms_error(err, errlen, "%s(%s): %s", what, w->tmp_path, strerror(errno));
		ms_spool_abort(writer);
		return -1;
	}
	/* Published: from here on only the directory entry's durability is at
	 * stake, and the file stays for the learner whatever we return. */
	if (ms_fsync_dir(w->new_dir) < 0)
		ret = ms_error(err, errlen, "fsync(%s): %s", w->new_dir, strerror(errno));
	free(w);
	*writer = NULL;
	return ret;
}

int
ms_spool_finish(struct ms_spool_writer *writer, char *err, size_t errlen)
{
	int fd = writer->fd;

	writer->fd = -1;
	if (close(fd) < 0)
		return ms_error(err, errlen, "close(%s): %s", writer->tmp_path, strerror(errno));
	return 0;
}

/* Make the data of every finished file durable before any is renamed. */
static int
sync_finished(struct ms_spool_writer **writers, size_t count, char *err, size_t errlen)
{
	const char *path = writers[0]->new_dir;
	int fd, ret = 0;
#ifdef __linux__
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || syncfs(fd) < 0)
		ret = -1;
#else
	size_t i;

	for (i = 0, fd = -1; i < count && ret == 0; i++) {
		path = writers[i]->tmp_path;
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fsync(fd) < 0)
			ret = -1;
		else if (close(fd) < 0)
			ret = -1;
		if (ret == 0)
			fd = -1;
	}
#endif
	if (ret < 0)
		ms_error(err, errlen, "sync(%s): %s", path, strerror(errno));
	if (fd >= 0)
		(void)close(fd);
	return ret;
}

int
ms_spool_commit_many(struct ms_spool_writer **writers, size_t count, char *err, size_t errlen)
{
	int ret = 0;
	size_t i;

	if (count == 0)
		return 0;
	if (sync_finished(writers, count, err, errlen) < 0) {
		for (i = 0; i < count; i++)
			ms_spool_abort(&writers[i]);
		return -1;
	}
	for (i = 0; i < count; i++) {
		if (rename(writers[i]->tmp_path, writers[i]->new_path) == 0)
			continue;
		if (ret == 0)
			ret = ms_error(err, errlen, "rename(%s): %s", writers[i]->tmp_path,
			               strerror(errno));
		(void)unlink(writers[i]->tmp_path);
	}
	if (ms_fsync_dir(writers[0]->new_dir) < 0 && ret == 0)
		ret = ms_error(err, errlen, "fsync(%s): %s", writers[0]->new_dir, strerror(errno));
	for (i = 0; i < count; i++) {
		free(writers[i]);
		writers[i] = NULL;
	}
	return ret;
}

void
ms_spool_abort(struct ms_spool_writer **writer)
{
	struct ms_spool_writer *w = *writer;

	if (w == NULL)
		return;
	if (w->fd >= 0)
		(void)close(w->fd);
	(void)unlink(w->tmp_path);
	free(w);
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
ms_spool_poke(const char *learner_socket)
{
	static const char line[] = "POKE\n";
	struct sockaddr_un sun;
	int fd, ret = -1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(learner_socket) >= sizeof(sun.sun_path))
		return -1;
	strcpy(sun.sun_path, learner_socket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	/* A full backlog gives EAGAIN at once: the timer will find the file. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 &&
	    send(fd, line, sizeof(line) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	            (ssize_t)(sizeof(line) - 1))
		ret = 0;
	(void)close(fd);
	return ret;
}
