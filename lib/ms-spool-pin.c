/* Pinning a batch of references (format 4, doc/spool.md): the learner
 * hard-links the Maildir files the plugin only named into msg/ and rewrites
 * the manifest as format 3, off the IMAP path and before any learning, so a
 * message the user expunges later is still learned. */
#include "ms-spool.h"
#include "ms-util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What pin_one() did with a reference. */
#define PIN_LINKED     1
#define PIN_GONE       0
#define PIN_FAILED     (-1) /* the system: retry later */
#define PIN_UNLINKABLE (-2) /* no link can be made from this Maildir */

struct pin {
	const char *spool_dir, *name, *unique;
	struct ms_spool_entry entry;
	int msg_fd;
	unsigned int pinned;
	/* the format-3 manifest being built; its count's digits at count_off */
	char *out;
	size_t out_len, out_cap, count_off;
};

/* The manifest's unique part (after "<class>.") must make link names a
 * format-3 reader accepts: "<unique>.<n>". */
static bool
unique_fits(const char *unique)
{
	size_t len = strlen(unique);

	return len + 1 + 10 <= MS_SPOOL_LINK_MAX && ms_spool_link_name_valid(unique, len);
}

static int
out_add(struct pin *p, const char *data, size_t len)
{
	char *bigger;
	size_t cap;

	if (p->out_len + len > p->out_cap) {
		cap = p->out_cap == 0 ? 8192 : p->out_cap;
		while (cap < p->out_len + len)
			cap *= 2;
		if ((bigger = realloc(p->out, cap)) == NULL)
			return -1;
		p->out = bigger;
		p->out_cap = cap;
	}
	memcpy(p->out + p->out_len, data, len);
	p->out_len += len;
	return 0;
}

/* The same for every message of the Maildir: no pin is possible. */
static bool
link_unlinkable(int error)
{
	return error == EXDEV || error == EPERM || error == EACCES || error == EROFS ||
	       error == EMLINK;
}

/* Links src to msg/<lname>: PIN_LINKED, PIN_GONE (src missing),
 * PIN_UNLINKABLE or PIN_FAILED; errno kept. */
static int
link_to(struct pin *p, const char *src, const char *lname)
{
	if (linkat(AT_FDCWD, src, p->msg_fd, lname, 0) == 0)
		return PIN_LINKED;
	/* An earlier try of this manifest made it (a crash or a failure
	   half-way): the name is this manifest's alone, so it is this
	   reference's message, even if Dovecot's name is gone since. */
	if (errno == EEXIST)
		return PIN_LINKED;
	if (errno == ENOENT || errno == ENOTDIR)
		return PIN_GONE;
	return link_unlinkable(errno) ? PIN_UNLINKABLE : PIN_FAILED;
}

/* Pins reference i (entry.ref) as msg/<unique>.<i>. */
static int
pin_one(struct pin *p, unsigned int i, char *err, size_t errlen)
{
	const struct ms_spool_entry *e = &p->entry;
	char lname[MS_SPOOL_LINK_MAX + 1], src[PATH_MAX];
	struct stat st;
	int ret, found, tries;

	snprintf(lname, sizeof(lname), "%s.%u", p->unique, i);
	if (snprintf(src, sizeof(src), "%s/%s", e->maildir, e->ref) >= (int)sizeof(src))
		return PIN_GONE; /* cannot happen: both are bounded */
	ret = link_to(p, src, lname);
	if (ret == PIN_GONE && fstatat(p->msg_fd, lname, &st, AT_SYMLINK_NOFOLLOW) == 0)
		ret = PIN_LINKED; /* linked by an earlier try, expunged since */
	/* Dovecot renamed it (a flag, or new/ -> cur/); a second listing
	   catches a rename between the first and the link. */
	for (tries = 0; ret == PIN_GONE && tries < 2; tries++) {
		found = ms_spool_lookup_find(&p->entry.lookup, e->maildir, e->ref, tries > 0, src,
		                             sizeof(src), err, errlen);
		if (found < 0)
			return link_unlinkable(errno) ? PIN_UNLINKABLE : PIN_FAILED;
		if (found == 0)
			break;
		ret = link_to(p, src, lname);
	}
	if (ret == PIN_LINKED && out_add(p, "@", 1) == 0 && out_add(p, lname, strlen(lname)) == 0 &&
	    out_add(p, "\n", 1) == 0)
		return PIN_LINKED;
	if (ret == PIN_LINKED) {
		errno = ENOMEM;
		return ms_error(err, errlen, "out of memory");
	}
	if (ret != PIN_GONE)
		ms_error(err, errlen, "link(%s, %s/%s/%s): %s", src, p->spool_dir,
		         MS_SPOOL_LINK_DIR, lname, strerror(errno));
	return ret;
}

/* Removes msg/<unique>.0 .. .<count - 1>, what any try of this manifest
 * may have made. */
static void
unlink_all(struct pin *p, unsigned int count)
{
	char lname[MS_SPOOL_LINK_MAX + 1];
	unsigned int i;

	for (i = 0; i < count; i++) {
		snprintf(lname, sizeof(lname), "%s.%u", p->unique, i);
		(void)unlinkat(p->msg_fd, lname, 0);
	}
}

/* Every record a reference, before a single link is made: a malformed
 * file goes to bad/ whole. */
static int
check_records(struct pin *p, char *err, size_t errlen)
{
	struct ms_spool_entry walk = p->entry;
	int ret;

	while ((ret = ms_spool_next(&walk, err, errlen)) > 0)
		;
	return ret;
}

static enum ms_spool_pin_result
errno_pin_result(int error)
{
	return ms_spool_errno_transient(error) ? MS_SPOOL_PIN_ERROR : MS_SPOOL_PIN_UNLINKABLE;
}

/* Writes the format-3 manifest to tmp/<unique> and renames it over
 * new/<name>: links durable first, then the manifest, then its name. */
static int
publish(struct pin *p, char *err, size_t errlen)
{
	char tmp[PATH_MAX], dst[PATH_MAX], dir[PATH_MAX];
	const char *what = NULL;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", p->spool_dir, p->unique);
	snprintf(dst, sizeof(dst), "%s/new/%s", p->spool_dir, p->name);
	snprintf(dir, sizeof(dir), "%s/new", p->spool_dir);
	if (fsync(p->msg_fd) < 0)
		return ms_error(err, errlen, "fsync(%s/" MS_SPOOL_LINK_DIR "): %s", p->spool_dir,
		                strerror(errno));
	/* not O_EXCL: a try that died here left it, and the name is ours */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ms_error(err, errlen, "open(%s): %s", tmp, strerror(errno));
	if (ms_write_all(fd, p->out, p->out_len) < 0)
		what = "write";
	else if (fdatasync(fd) < 0)
		what = "fdatasync";
	if (close(fd) < 0 && what == NULL)
		what = "close";
	if (what == NULL && rename(tmp, dst) < 0)
		what = "rename";
	if (what != NULL) {
		ms_error(err, errlen, "%s(%s): %s", what, tmp, strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	if (ms_fsync_dir(dir) < 0)
		return ms_error(err, errlen, "fsync(%s): %s", dir, strerror(errno));
	return 0;
}

/* The header of the pinned manifest: format 3, the count known now. The
 * Maildir stays, for people reading the spool (readers skip it). */
static int
start_manifest(struct pin *p)
{
	char header[MS_SPOOL_HEADER_MAX];
	size_t len;

	len = ms_spool_header(header, sizeof(header), MS_SPOOL_MAGIC_LINKS, p->entry.user,
	                      p->entry.cls, true, p->entry.maildir, &p->count_off);
	return out_add(p, header, len);
}

/* Fills in the count of the links made. */
static void
finish_manifest(struct pin *p)
{
	char count[11];

	snprintf(count, sizeof(count), "%010u", p->pinned);
	memcpy(p->out + p->count_off, count, 10);
}

/* Links every reference; returns the result when it is not a publish. */
static int
pin_all(struct pin *p, ms_spool_pin_gone_fn *gone, void *context, char *err, size_t errlen)
{
	char path[PATH_MAX];
	unsigned int i;
	int ret;

	for (i = 0; ms_spool_next(&p->entry, err, errlen) > 0; i++) {
		ret = pin_one(p, i, err, errlen);
		if (ret == PIN_LINKED) {
			p->pinned++;
		} else if (ret == PIN_GONE) {
			snprintf(path, sizeof(path), "%s/%s", p->entry.maildir, p->entry.ref);
			if (gone != NULL)
				gone(context, i + 1, p->entry.count, path);
		} else if (ret == PIN_UNLINKABLE) {
			/* none of it pinned: read the Maildir files instead */
			unlink_all(p, p->entry.count);
			return MS_SPOOL_PIN_UNLINKABLE;
		} else {
			return MS_SPOOL_PIN_ERROR;
		}
	}
	return MS_SPOOL_PIN_DONE;
}

static enum ms_spool_pin_result
pin_file(struct pin *p, ms_spool_pin_gone_fn *gone, void *context, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int ret, error;

	switch (ms_spool_read(p->spool_dir, p->name, MS_SPOOL_BATCH_MAX, &p->entry, err, errlen)) {
	case MS_SPOOL_READ_OK:
		break;
	case MS_SPOOL_READ_GONE:
		return MS_SPOOL_PIN_NONE;
	case MS_SPOOL_READ_BAD:
		return MS_SPOOL_PIN_BAD;
	case MS_SPOOL_READ_ERROR:
		return MS_SPOOL_PIN_ERROR;
	}
	/* the records only: the files are linked, not read */
	p->entry.spool_dir = NULL;
	if (p->entry.version != 4)
		return MS_SPOOL_PIN_NONE; /* replaced since the first look */
	if (check_records(p, err, errlen) < 0)
		return MS_SPOOL_PIN_BAD;
	snprintf(path, sizeof(path), "%s/" MS_SPOOL_LINK_DIR, p->spool_dir);
	if ((p->msg_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		error = errno;
		ms_error(err, errlen, "open(%s): %s", path, strerror(error));
		return errno_pin_result(error);
	}
	if (start_manifest(p) < 0)
		return ms_error(err, errlen, "out of memory");
	if ((ret = pin_all(p, gone, context, err, errlen)) != MS_SPOOL_PIN_DONE)
		return ret;
	if (p->pinned == 0) {
		/* nothing left to learn */
		if (ms_spool_remove(p->spool_dir, p->name, err, errlen) < 0)
			return MS_SPOOL_PIN_ERROR;
		return MS_SPOOL_PIN_DONE;
	}
	finish_manifest(p);
	return publish(p, err, errlen) < 0 ? MS_SPOOL_PIN_ERROR : MS_SPOOL_PIN_DONE;
}

enum ms_spool_pin_result
ms_spool_pin(const char *spool_dir, const char *name, ms_spool_pin_gone_fn *gone, void *context,
             unsigned int *pinned_r, unsigned int *count_r, char *err, size_t errlen)
{
	struct pin p;
	const char *dot = strchr(name, '.');
	int version = ms_spool_peek_version(spool_dir, name);
	enum ms_spool_pin_result ret;

	if (pinned_r != NULL)
		*pinned_r = 0;
	if (count_r != NULL)
		*count_r = 0;
	if (version < 0 && errno_pin_result(errno) == MS_SPOOL_PIN_ERROR) {
		ms_error(err, errlen, "open(%s/new/%s): %s", spool_dir, name, strerror(errno));
		return MS_SPOOL_PIN_ERROR;
	}
	/* gone, or not ours to judge: the learner's read says what it is */
	if (version != 4)
		return MS_SPOOL_PIN_NONE;
	if (dot == NULL || !unique_fits(dot + 1)) {
		ms_error(err, errlen, "name unfit for " MS_SPOOL_LINK_DIR "/ links");
		return MS_SPOOL_PIN_BAD;
	}
	memset(&p, 0, sizeof(p));
	p.spool_dir = spool_dir;
	p.name = name;
	p.unique = dot + 1;
	p.msg_fd = -1;
	ret = pin_file(&p, gone, context, err, errlen);
	if (pinned_r != NULL)
		*pinned_r = p.pinned;
	if (count_r != NULL)
		*count_r = p.entry.count;
	if (p.msg_fd >= 0)
		(void)close(p.msg_fd);
	free(p.out);
	ms_spool_entry_free(&p.entry);
	return ret;
}
