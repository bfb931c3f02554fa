#include "ms-maildir.h"
#include "ms-util.h"
#include "ms-maildir-keywords.h"
#include "ms-path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define MAILDIR_DIR_MODE    0700
#define MAILDIR_PARENT_MODE 0711 /* above the Maildir: other users' uids pass through */
#define MAILDIR_FILE_MODE   0600
#define NAME_TRIES          100

/* Q<n> in file names: unique per process across every Maildir it writes,
 * so it is the process's, not a context's. */
static unsigned int maildir_q;

void
ms_maildir_escape_host(const char *host, char *buf, size_t bufsize)
{
	size_t used = 0;
	const char *esc;
	char one[2] = {0, 0};

	if (bufsize == 0)
		return;
	for (; *host != '\0'; host++) {
		if (*host == '/')
			esc = "\\057";
		else if (*host == ':')
			esc = "\\072";
		else {
			one[0] = *host;
			esc = one;
		}
		if (strlen(esc) >= bufsize - used)
			break;
		memcpy(buf + used, esc, strlen(esc));
		used += strlen(esc);
	}
	buf[used] = '\0';
}

int
ms_maildir_base_name(char *buf, size_t bufsize, long sec, long usec, long pid, unsigned int q,
                     const char *escaped_host)
{
	int ret = snprintf(buf, bufsize, "%ld.M%ldP%ldQ%u.%s", sec, usec, pid, q, escaped_host);

	return ret < 0 || (size_t)ret >= bufsize ? -1 : 0;
}

void
ms_maildir_sizes(const struct ms_maildir_chunk *chunks, size_t count, size_t *size_r,
                 size_t *vsize_r)
{
	size_t size = 0, lines = 0, i, j;
	bool cr = false;

	for (i = 0; i < count; i++) {
		for (j = 0; j < chunks[i].size; j++) {
			unsigned char c = chunks[i].data[j];

			if (c == '\n') {
				lines++;
				if (cr)
					size--; /* the CR of a CRLF is not stored */
			}
			cr = c == '\r';
			size++;
		}
	}
	*size_r = size;
	*vsize_r = size + lines;
}

static enum ms_maildir_status
fail(char *err, size_t errlen, const char *what, const char *path)
{
	int saved = errno;

	snprintf(err, errlen, "%s %s: %s", what, path, strerror(saved));
	errno = saved;
	return saved == ENOSPC || saved == EDQUOT ? MS_MAILDIR_DISKFULL : MS_MAILDIR_TEMPFAIL;
}

/* fsync the directory holding path, so a new entry in it is durable. */
static int
fsync_parent(const char *path)
{
	char parent[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return ms_fsync_dir(".");
	snprintf(parent, sizeof(parent), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	return ms_fsync_dir(parent);
}

/* mkdir -p; every directory made is fsync'd into its parent. */
static int
make_dir(const char *path, mode_t mode)
{
	char parent[PATH_MAX];
	const char *slash;

	if (mkdir(path, mode) == 0)
		return fsync_parent(path);
	if (errno == EEXIST)
		return 0;
	if (errno != ENOENT || (slash = strrchr(path, '/')) == NULL || slash == path)
		return -1;
	snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
	if (make_dir(parent, MAILDIR_PARENT_MODE) < 0)
		return -1;
	if (mkdir(path, mode) < 0)
		return errno == EEXIST ? 0 : -1;
	return fsync_parent(path);
}

static int
make_subdirs(const char *dir, char *failed, size_t failedlen)
{
	static const char *const subs[] = {"tmp", "new", "cur"};
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		if (make_dir(path, MAILDIR_DIR_MODE) < 0) {
			snprintf(failed, failedlen, "%s", path);
			return -1;
		}
	}
	return 0;
}

/* The Maildir (and the Maildir++ folder fdir, if it is not dir) with
 * tmp/ new/ cur/, created where missing. */
static int
make_maildir(const char *dir, const char *fdir, char *failed, size_t failedlen)
{
	char path[PATH_MAX];
	int fd;

	snprintf(failed, failedlen, "%s", dir);
	if (make_dir(dir, MAILDIR_DIR_MODE) < 0 || make_subdirs(dir, failed, failedlen) < 0)
		return -1;
	if (strcmp(dir, fdir) == 0)
		return 0;
	snprintf(failed, failedlen, "%s", fdir);
	if (make_dir(fdir, MAILDIR_DIR_MODE) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/maildirfolder", fdir);
	snprintf(failed, failedlen, "%s", path);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, MAILDIR_FILE_MODE);
	if (fd < 0 || close(fd) < 0 || ms_fsync_dir(fdir) < 0)
		return -1;
	return make_subdirs(fdir, failed, failedlen);
}

struct lf_writer {
	int fd;
	bool cr; /* a CR ended the last chunk: dropped if an LF follows */
	size_t used;
	unsigned char buf[65536];
};

static int
lf_flush(struct lf_writer *w)
{
	size_t done = 0;
	ssize_t ret;

	while (done < w->used) {
		ret = write(w->fd, w->buf + done, w->used - done);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			if (ret == 0)
				errno = EIO;
			return -1;
		}
		done += (size_t)ret;
	}
	w->used = 0;
	return 0;
}

static int
lf_put(struct lf_writer *w, const unsigned char *data, size_t size)
{
	size_t n;

	while (size > 0) {
		if (w->used == sizeof(w->buf) && lf_flush(w) < 0)
			return -1;
		n = sizeof(w->buf) - w->used;
		if (n > size)
			n = size;
		memcpy(w->buf + w->used, data, n);
		w->used += n;
		data += n;
		size -= n;
	}
	return 0;
}

/* Copy data, storing each CRLF as LF (also one split between chunks). */
static int
lf_write(struct lf_writer *w, const unsigned char *data, size_t size)
{
	const unsigned char *cr;
	size_t n;

	if (size > 0 && w->cr) {
		w->cr = false;
		if (data[0] != '\n' && lf_put(w, (const unsigned char *)"\r", 1) < 0)
			return -1;
	}
	while (size > 0) {
		if ((cr = memchr(data, '\r', size)) == NULL)
			return lf_put(w, data, size);
		n = (size_t)(cr - data);
		if (lf_put(w, data, n) < 0)
			return -1;
		if (n + 1 == size) {
			w->cr = true;
			return 0;
		}
		if (cr[1] != '\n' && lf_put(w, cr, 1) < 0)
			return -1;
		data += n + 1;
		size -= n + 1;
	}
	return 0;
}

static int
write_chunks(int fd, const struct ms_maildir_chunk *chunks, size_t count)
{
	struct lf_writer w;
	size_t i;

	w.fd = fd;
	w.cr = false;
	w.used = 0;
	for (i = 0; i < count; i++) {
		if (lf_write(&w, chunks[i].data, chunks[i].size) < 0)
			return -1;
	}
	if (w.cr && lf_put(&w, (const unsigned char *)"\r", 1) < 0)
		return -1;
	return lf_flush(&w);
}

/* O_EXCL file in fdir/tmp/; base_r gets its name. Creates the Maildir the
 * first time a user gets mail. */
static int
open_tmp(const char *dir, const char *fdir, const char *host, char *base_r, size_t baselen,
         char *tmp_r, size_t tmplen, char *failed, size_t failedlen)
{
	struct timeval tv;
	bool created = false;
	int fd, tries;

	for (tries = 0; tries < NAME_TRIES; tries++) {
		gettimeofday(&tv, NULL);
		if (ms_maildir_base_name(base_r, baselen, (long)tv.tv_sec, (long)tv.tv_usec,
		                         (long)getpid(), ++maildir_q, host) < 0 ||
		    (size_t)snprintf(tmp_r, tmplen, "%s/tmp/%s", fdir, base_r) >= tmplen) {
			snprintf(failed, failedlen, "%s", fdir);
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = open(tmp_r, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, MAILDIR_FILE_MODE);
		if (fd >= 0)
			return fd;
		if (errno == ENOENT && !created) {
			created = true;
			if (make_maildir(dir, fdir, failed, failedlen) < 0)
				return -1;
		} else if (errno != EEXIST) {
			snprintf(failed, failedlen, "%s", tmp_r);
			return -1;
		}
	}
	snprintf(failed, failedlen, "%s", tmp_r);
	return -1;
}

/* Write, fsync and close fd (always closed). */
static enum ms_maildir_status
write_tmp(int fd, const char *tmp, const struct ms_maildir_chunk *chunks, size_t count, char *err,
          size_t errlen)
{
	enum ms_maildir_status status;

	if (write_chunks(fd, chunks, count) < 0 || fsync(fd) < 0) {
		status = fail(err, errlen, "write", tmp);
		(void)close(fd);
		return status;
	}
	/* NFS reports write errors at close */
	if (close(fd) < 0)
		return fail(err, errlen, "close", tmp);
	return MS_MAILDIR_OK;
}

/* Make the entry new (just renamed or linked into fdir/sub) durable; if it
 * cannot be, take it back: the MTA will retry. */
static enum ms_maildir_status
sync_new(const char *new, const char *fdir, const char *sub, char *err, size_t errlen)
{
	char newdir[PATH_MAX];
	enum ms_maildir_status status;

	if ((size_t)snprintf(newdir, sizeof(newdir), "%s/%s", fdir, sub) >= sizeof(newdir) ||
	    ms_fsync_dir(newdir) < 0) {
		status = fail(err, errlen, "fsync", newdir);
		(void)unlink(new);
		return status;
	}
	return MS_MAILDIR_OK;
}

/* Publish the written tmp as new (in new/, or cur/ when the message carries
 * flags). */
static enum ms_maildir_status
store(const char *tmp, const char *new, const char *dir, const char *fdir, const char *sub,
      char *err, size_t errlen)
{
	char failed[PATH_MAX];

	if (rename(tmp, new) < 0) {
		/* new/ removed under us: recreate it once */
		if (errno != ENOENT || make_maildir(dir, fdir, failed, sizeof(failed)) < 0 ||
		    rename(tmp, new) < 0)
			return fail(err, errlen, "rename to", new);
	}
	return sync_new(new, fdir, sub, err, errlen);
}

/* The directory of folder (NULL or "INBOX": the Maildir dir itself). */
static int
folder_dir(const char *dir, const char *folder, char *fdir, size_t fdirlen, char *err,
           size_t errlen)
{
	if (folder == NULL || strcasecmp(folder, "INBOX") == 0)
		snprintf(fdir, fdirlen, "%s", dir);
	else if (!ms_path_safe_folder(folder) ||
	         (size_t)snprintf(fdir, fdirlen, "%s/.%s", dir, folder) >= fdirlen)
		return ms_error(err, errlen, "unusable folder name \"%.64s\"", folder);
	return 0;
}

/* fdir/new/<base>,S=,W= or, with flags or keywords, fdir/cur/<base>,S=,W=:2,<info>
 * (what Dovecot names a saved message). *sub_r: "new" or "cur". */
static int
final_name(const char *fdir, const char *base, size_t size, size_t vsize, const char *flags,
           const char *keywords, char *new, size_t newlen, const char **sub_r)
{
	char info[64], letters[MS_MAILDIR_KEYWORDS_MAX + 1], kwerr[256];

	/* a keyword the folder cannot record costs the keyword, not the mail */
	if (ms_maildir_keyword_letters(fdir, keywords, letters, kwerr, sizeof(kwerr)) < 0)
		letters[0] = '\0';
	snprintf(info, sizeof(info), "%.20s%s", flags, letters);
	*sub_r = info[0] == '\0' ? "new" : "cur";
	if ((size_t)snprintf(new, newlen, "%s/%s/%s,S=%zu,W=%zu%s%s", fdir, *sub_r, base, size,
	                     vsize, info[0] == '\0' ? "" : ":2,", info) >= newlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

enum ms_maildir_status
ms_maildir_deliver(const char *dir, const char *folder, const char *escaped_host,
                   const struct ms_maildir_chunk *chunks, size_t count, char *path_r,
                   size_t pathlen, char *err, size_t errlen)
{
	return ms_maildir_deliver_flags(dir, folder, escaped_host, "", NULL, chunks, count, path_r,
	                                pathlen, err, errlen);
}

enum ms_maildir_status
ms_maildir_deliver_flags(const char *dir, const char *folder, const char *escaped_host,
                         const char *flags, const char *keywords,
                         const struct ms_maildir_chunk *chunks, size_t count, char *path_r,
                         size_t pathlen, char *err, size_t errlen)
{
	char fdir[PATH_MAX], base[NAME_MAX + 1], tmp[PATH_MAX], new[PATH_MAX], failed[PATH_MAX];
	enum ms_maildir_status status;
	const char *sub;
	size_t size, vsize;
	int fd;

	if (folder_dir(dir, folder, fdir, sizeof(fdir), err, errlen) < 0)
		return MS_MAILDIR_TEMPFAIL;
	ms_maildir_sizes(chunks, count, &size, &vsize);
	fd = open_tmp(dir, fdir, escaped_host, base, sizeof(base), tmp, sizeof(tmp), failed,
	              sizeof(failed));
	if (fd < 0)
		return fail(err, errlen, "create", failed);
	if (final_name(fdir, base, size, vsize, flags, keywords, new, sizeof(new), &sub) < 0) {
		status = fail(err, errlen, "name in", fdir);
		(void)close(fd);
	} else if ((status = write_tmp(fd, tmp, chunks, count, err, errlen)) == MS_MAILDIR_OK)
		status = store(tmp, new, dir, fdir, sub, err, errlen);
	if (status != MS_MAILDIR_OK) {
		(void)unlink(tmp);
		return status;
	}
	snprintf(path_r, pathlen, "%s", new);
	return MS_MAILDIR_OK;
}

enum ms_maildir_status
ms_maildir_stage(const char *dir, const char *escaped_host, const struct ms_maildir_chunk *chunks,
                 size_t count, struct ms_maildir_staged *st, char *err, size_t errlen)
{
	char failed[PATH_MAX];
	enum ms_maildir_status status;
	int fd;

	st->tmp[0] = '\0';
	if ((size_t)snprintf(st->dir, sizeof(st->dir), "%s", dir) >= sizeof(st->dir) ||
	    (size_t)snprintf(st->host, sizeof(st->host), "%s", escaped_host) >= sizeof(st->host)) {
		errno = ENAMETOOLONG;
		return fail(err, errlen, "create in", dir);
	}
	ms_maildir_sizes(chunks, count, &st->size, &st->vsize);
	fd = open_tmp(dir, dir, escaped_host, st->base, sizeof(st->base), st->tmp, sizeof(st->tmp),
	              failed, sizeof(failed));
	if (fd < 0) {
		st->tmp[0] = '\0';
		return fail(err, errlen, "create", failed);
	}
	if ((status = write_tmp(fd, st->tmp, chunks, count, err, errlen)) != MS_MAILDIR_OK)
		ms_maildir_unstage(st);
	return status;
}

/* The staged file at new: the last folder takes the file itself (a rename,
 * the same directory work as a plain delivery), the others a hard link. */
static int
place(struct ms_maildir_staged *st, const char *new, bool last)
{
	if (!last)
		return link(st->tmp, new);
	if (rename(st->tmp, new) < 0)
		return -1;
	st->tmp[0] = '\0';
	return 0;
}

enum ms_maildir_status
ms_maildir_publish(struct ms_maildir_staged *st, const char *folder, const char *flags,
                   const char *keywords, bool last, const struct ms_maildir_chunk *chunks,
                   size_t count, char *path_r, size_t pathlen, char *err, size_t errlen)
{
	char fdir[PATH_MAX], new[PATH_MAX], failed[PATH_MAX];
	enum ms_maildir_status status;
	const char *sub;

	if (folder_dir(st->dir, folder, fdir, sizeof(fdir), err, errlen) < 0)
		return MS_MAILDIR_TEMPFAIL;
	/* a folder fileinto :create makes: before its dovecot-keywords */
	if (strcmp(fdir, st->dir) != 0 && access(fdir, F_OK) < 0 &&
	    make_maildir(st->dir, fdir, failed, sizeof(failed)) < 0)
		return fail(err, errlen, "create", failed);
	if (final_name(fdir, st->base, st->size, st->vsize, flags, keywords, new, sizeof(new),
	               &sub) < 0)
		return fail(err, errlen, "name in", fdir);
	if (st->tmp[0] == '\0' ||
	    (place(st, new, last) < 0 &&
	     (errno != ENOENT || make_maildir(st->dir, fdir, failed, sizeof(failed)) < 0 ||
	      place(st, new, last) < 0))) {
		/* no hard links here (or another file system): a copy */
		return ms_maildir_deliver_flags(st->dir, folder, st->host, flags, keywords, chunks,
		                                count, path_r, pathlen, err, errlen);
	}
	if ((status = sync_new(new, fdir, sub, err, errlen)) != MS_MAILDIR_OK)
		return status;
	snprintf(path_r, pathlen, "%s", new);
	return MS_MAILDIR_OK;
}

void
ms_maildir_unstage(struct ms_maildir_staged *st)
{
	if (st->tmp[0] != '\0')
		(void)unlink(st->tmp);
	st->tmp[0] = '\0';
}
