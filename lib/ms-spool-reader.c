/* The spool's consumer side: list new/, parse a file, delete or reject it. */
#include "ms-spool.h"
#include "ms-util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define USER_FIELD    "X-Mailsift-User"
#define CLASS_FIELD   "X-Mailsift-Class"
#define BATCH_FIELD   "X-Mailsift-Batch"
#define MAILDIR_FIELD "X-Mailsift-Maildir"

/* The fields parse_field() has seen. */
#define SEEN_USER    1
#define SEEN_CLASS   2
#define SEEN_BATCH   4
#define SEEN_MAILDIR 8

static int
spool_path(char *buf, size_t size, const char *spool_dir, const char *sub, const char *name)
{
	int len = snprintf(buf, size, "%s/%s%s%s", spool_dir, sub, *name == '\0' ? "" : "/", name);

	return len < 0 || (size_t)len >= size ? -1 : 0;
}

int
ms_spool_mkdirs(const char *spool_dir, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	static const char *const subs[] = {"", "tmp", "new", "bad", MS_SPOOL_LINK_DIR};
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (spool_path(path, sizeof(path), spool_dir, subs[i], "") < 0)
			return ms_error(err, errlen, "%s: path too long", spool_dir);
		if (*subs[i] == '\0')
			snprintf(path, sizeof(path), "%s", spool_dir);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return ms_error(err, errlen, "mkdir(%s): %s", path, strerror(errno));
		if (uid != (uid_t)-1 && chown(path, uid, gid) < 0)
			return ms_error(err, errlen, "chown(%s): %s", path, strerror(errno));
	}
	return 0;
}

/* "spam.<unique>" -> MS_CLASS_SPAM; the unique part must not be empty. */
static int
name_class(const char *name, enum ms_class *cls_r)
{
	char prefix[8];
	const char *dot = strchr(name, '.');

	if (dot == NULL || dot[1] == '\0' || (size_t)(dot - name) >= sizeof(prefix))
		return -1;
	memcpy(prefix, name, (size_t)(dot - name));
	prefix[dot - name] = '\0';
	return ms_spool_class_parse(prefix, cls_r);
}

/* Oldest first: the unique part starts with the fixed-width time. */
static int
name_cmp(const void *a, const void *b)
{
	const char *na = *(const char *const *)a, *nb = *(const char *const *)b;
	const char *ua = strchr(na, '.'), *ub = strchr(nb, '.');
	int ret;

	ret = strcmp(ua != NULL ? ua : na, ub != NULL ? ub : nb);
	return ret != 0 ? ret : strcmp(na, nb);
}

void
ms_spool_names_free(char **names, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

static int
names_add(char ***names, size_t *count, size_t *cap, const char *name)
{
	char **bigger;

	if (*count == *cap) {
		*cap = *cap == 0 ? 64 : *cap * 2;
		if ((bigger = realloc(*names, *cap * sizeof(*bigger))) == NULL)
			return -1;
		*names = bigger;
	}
	if (((*names)[*count] = strdup(name)) == NULL)
		return -1;
	(*count)++;
	return 0;
}

/* The names in path not starting with '.', sorted by cmp; a missing
 * directory is empty if missing_ok. -1 keeps errno. */
static int
list_dir(const char *path, bool missing_ok, int (*cmp)(const void *, const void *), char ***names_r,
         size_t *count_r, char *err, size_t errlen)
{
	char **names = NULL;
	size_t count = 0, cap = 0;
	struct dirent *d;
	DIR *dir;
	int ret = 0, error = 0;

	*names_r = NULL;
	*count_r = 0;
	if ((dir = opendir(path)) == NULL) {
		if (missing_ok && errno == ENOENT)
			return 0;
		error = errno;
		ret = ms_error(err, errlen, "opendir(%s): %s", path, strerror(error));
		errno = error;
		return ret;
	}
	errno = 0;
	while (error == 0 && (d = readdir(dir)) != NULL) {
		if (d->d_name[0] != '.' && names_add(&names, &count, &cap, d->d_name) < 0)
			error = ENOMEM;
		errno = 0;
	}
	if (error == 0)
		error = errno;
	(void)closedir(dir);
	if (error != 0) {
		ms_spool_names_free(names, count);
		ret = ms_error(err, errlen, "readdir(%s): %s", path, strerror(error));
		errno = error;
		return ret;
	}
	if (count > 0)
		qsort(names, count, sizeof(*names), cmp);
	*names_r = names;
	*count_r = count;
	return 0;
}

int
ms_spool_list(const char *spool_dir, char ***names_r, size_t *count_r, char *err, size_t errlen)
{
	char path[PATH_MAX];

	if (spool_path(path, sizeof(path), spool_dir, "new", "") < 0)
		return ms_error(err, errlen, "%s: path too long", spool_dir);
	return list_dir(path, false, name_cmp, names_r, count_r, err, errlen);
}

/* One listing of a Maildir's cur/ and new/, sorted, made when a referenced
 * file was not where the reference said. */
struct ms_spool_lookup {
	char **names[2];
	size_t count[2];
};

static const char *const lookup_subs[2] = {"cur", "new"};

static int
plain_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void
ms_spool_lookup_free(struct ms_spool_lookup **lookup)
{
	struct ms_spool_lookup *lk = *lookup;
	size_t i;

	if (lk == NULL)
		return;
	for (i = 0; i < 2; i++)
		ms_spool_names_free(lk->names[i], lk->count[i]);
	free(lk);
	*lookup = NULL;
}

/* -1 keeps errno. */
static int
lookup_load(struct ms_spool_lookup **lookup, const char *maildir, char *err, size_t errlen)
{
	struct ms_spool_lookup *lk;
	char path[PATH_MAX];
	size_t i;
	int error;

	if ((lk = calloc(1, sizeof(*lk))) == NULL) {
		errno = ENOMEM;
		return ms_error(err, errlen, "out of memory");
	}
	*lookup = lk;
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", maildir, lookup_subs[i]);
		if (list_dir(path, true, plain_cmp, &lk->names[i], &lk->count[i], err, errlen) <
		    0) {
			error = errno;
			ms_spool_lookup_free(lookup);
			errno = error;
			return -1;
		}
	}
	return 0;
}

/* The first of names (sorted) that is base or starts with base and ':'. */
static const char *
lookup_in(char *const *names, size_t count, const char *base)
{
	size_t lo = 0, hi = count, mid, len = strlen(base);

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(names[mid], base) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* base's extensions sort after it, ":..." among them */
	for (; lo < count && strncmp(names[lo], base, len) == 0; lo++) {
		if (names[lo][len] == '\0' || names[lo][len] == ':')
			return names[lo];
	}
	return NULL;
}

int
ms_spool_lookup_find(struct ms_spool_lookup **lookup, const char *maildir, const char *ref,
                     bool reload, char *path, size_t size, char *err, size_t errlen)
{
	char base[MS_SPOOL_REF_MAX + 1];
	const char *name = ref + 4, *found;
	size_t len = strcspn(name, ":");
	int i;

	if (len >= sizeof(base))
		return 0;
	memcpy(base, name, len);
	base[len] = '\0';
	if (reload)
		ms_spool_lookup_free(lookup);
	if (*lookup == NULL && lookup_load(lookup, maildir, err, errlen) < 0)
		return -1;
	for (i = 0; i < 2; i++) {
		found = lookup_in((*lookup)->names[i], (*lookup)->count[i], base);
		if (found != NULL &&
		    snprintf(path, size, "%s/%s/%s", maildir, lookup_subs[i], found) < (int)size)
			return 1;
	}
	return 0;
}

static int
valid_value(const unsigned char *value, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (value[i] < ' ' || value[i] == 0x7f)
			return 0;
	}
	return 1;
}

/* Decimal digits, at most 10 (producers zero-pad), 1 .. UINT_MAX. */
static int
parse_count(const unsigned char *p, size_t len, unsigned int *count_r)
{
	unsigned long long n = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		n = n * 10 + (unsigned)(p[i] - '0');
	}
	if (n == 0 || n > UINT_MAX)
		return -1;
	*count_r = (unsigned int)n;
	return 0;
}

/* One "Name: value" header line (without its "\n"). */
static int
parse_field(const unsigned char *line, size_t len, struct ms_spool_entry *entry, int *seen,
            char *err, size_t errlen)
{
	const unsigned char *colon = memchr(line, ':', len);
	const char *value;
	size_t nlen, vlen;
	char cls[8];

	if (colon == NULL || colon + 1 == line + len || colon[1] != ' ')
		return ms_error(err, errlen, "header line without \"Name: value\"");
	nlen = (size_t)(colon - line);
	value = (const char *)colon + 2;
	vlen = len - nlen - 2;
	if (!valid_value((const unsigned char *)value, vlen))
		return ms_error(err, errlen, "control character in header value");
	if (nlen == strlen(USER_FIELD) && memcmp(line, USER_FIELD, nlen) == 0) {
		if ((*seen & SEEN_USER) != 0 || vlen > MS_SPOOL_USER_MAX)
			return ms_error(err, errlen, "duplicate or too long " USER_FIELD);
		memcpy(entry->user, value, vlen);
		entry->user[vlen] = '\0';
		*seen |= SEEN_USER;
	} else if (nlen == strlen(CLASS_FIELD) && memcmp(line, CLASS_FIELD, nlen) == 0) {
		if ((*seen & SEEN_CLASS) != 0 || vlen >= sizeof(cls))
			return ms_error(err, errlen, "duplicate or bad " CLASS_FIELD);
		memcpy(cls, value, vlen);
		cls[vlen] = '\0';
		if (ms_spool_class_parse(cls, &entry->cls) < 0)
			return ms_error(err, errlen, CLASS_FIELD " is neither spam nor ham");
		*seen |= SEEN_CLASS;
	} else if (entry->version >= 2 && nlen == strlen(BATCH_FIELD) &&
	           memcmp(line, BATCH_FIELD, nlen) == 0) {
		if ((*seen & SEEN_BATCH) != 0 ||
		    parse_count((const unsigned char *)value, vlen, &entry->count) < 0)
			return ms_error(err, errlen, "duplicate or bad " BATCH_FIELD);
		*seen |= SEEN_BATCH;
	} else if (entry->version == 4 && nlen == strlen(MAILDIR_FIELD) &&
	           memcmp(line, MAILDIR_FIELD, nlen) == 0) {
		if ((*seen & SEEN_MAILDIR) != 0 || !ms_spool_maildir_valid(value, vlen))
			return ms_error(err, errlen, "duplicate or bad " MAILDIR_FIELD);
		memcpy(entry->maildir, value, vlen);
		entry->maildir[vlen] = '\0';
		*seen |= SEEN_MAILDIR;
	} else if (nlen < 11 || memcmp(line, "X-Mailsift-", 11) != 0) {
		/* later X-Mailsift-* fields are skipped; anything else is not ours */
		return ms_error(err, errlen, "unexpected header field");
	}
	return 0;
}

/* The first line: "X-Mailsift-Spool: 1" to "4"; returns the version or 0. */
static unsigned int
magic_version(const unsigned char *data, size_t size)
{
	static const char *const magics[] = {MS_SPOOL_MAGIC "\n", MS_SPOOL_MAGIC_BATCH "\n",
	                                     MS_SPOOL_MAGIC_LINKS "\n", MS_SPOOL_MAGIC_REFS "\n"};
	const size_t len = strlen(MS_SPOOL_MAGIC) + 1;
	unsigned int i;

	for (i = 0; size >= len && i < sizeof(magics) / sizeof(magics[0]); i++) {
		if (memcmp(data, magics[i], len) == 0)
			return i + 1;
	}
	return 0;
}

int
ms_spool_peek_version(const char *spool_dir, const char *name)
{
	unsigned char line[sizeof(MS_SPOOL_MAGIC)];
	char path[PATH_MAX];
	ssize_t ret;
	int fd, error;

	if (spool_path(path, sizeof(path), spool_dir, "new", name) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)
		return -1;
	ret = pread(fd, line, sizeof(line), 0);
	error = errno;
	(void)close(fd);
	if (ret < 0) {
		errno = error;
		return -1;
	}
	return (int)magic_version(line, (size_t)ret);
}

int
ms_spool_parse(const unsigned char *data, size_t size, const char *name,
               struct ms_spool_entry *entry, char *err, size_t errlen)
{
	size_t limit = size < MS_SPOOL_HEADER_MAX ? size : MS_SPOOL_HEADER_MAX;
	const unsigned char *p = data, *end = data + limit, *nl;
	enum ms_class name_cls;
	int seen = 0;

	memset(entry, 0, sizeof(*entry));
	if (name_class(name, &name_cls) < 0)
		return ms_error(err, errlen, "name does not start with spam. or ham.");
	if ((entry->version = magic_version(data, limit)) == 0)
		return ms_error(err, errlen,
		                "not a spool file (no X-Mailsift-Spool: 1, 2, 3 or 4 line)");
	p += strlen(MS_SPOOL_MAGIC) + 1;
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL && nl != p) {
		if (parse_field(p, (size_t)(nl - p), entry, &seen, err, errlen) < 0)
			return -1;
		p = nl + 1;
	}
	if (nl == NULL)
		return ms_error(err, errlen, "header not ended by a blank line within %d bytes",
		                MS_SPOOL_HEADER_MAX);
	if ((seen & (SEEN_USER | SEEN_CLASS)) != (SEEN_USER | SEEN_CLASS))
		return ms_error(err, errlen, "header lacks " USER_FIELD " or " CLASS_FIELD);
	if (entry->version >= 2 && (seen & SEEN_BATCH) == 0)
		return ms_error(err, errlen, "batch header lacks " BATCH_FIELD);
	if (entry->version == 4 && (seen & SEEN_MAILDIR) == 0)
		return ms_error(err, errlen, "header lacks " MAILDIR_FIELD);
	if (entry->cls != name_cls)
		return ms_error(err, errlen, CLASS_FIELD " differs from the file name");
	entry->first = entry->next = nl + 1;
	entry->end = data + size;
	if (entry->version >= 2)
		return 0;
	entry->count = 1;
	entry->msg = entry->next;
	entry->size = (size_t)(entry->end - entry->msg);
	if (entry->size == 0)
		return ms_error(err, errlen, "empty message");
	return 0;
}

/* A batch record: "<length>\n", length bytes, "\n". */
static int
next_record(struct ms_spool_entry *entry, char *err, size_t errlen)
{
	const unsigned char *p = entry->next, *end = entry->end;
	size_t len = 0, digits = 0;

	for (; p < end && *p >= '0' && *p <= '9' && digits < 20; p++, digits++) {
		if (len > (SIZE_MAX - 9) / 10)
			break;
		len = len * 10 + (size_t)(*p - '0');
	}
	if (p == end || *p != '\n' || digits == 0 || entry->next[0] == '0')
		return ms_error(err, errlen, "bad length line");
	p++;
	if (len >= (size_t)(end - p) || p[len] != '\n')
		return ms_error(err, errlen, "truncated: %zu bytes announced, %zu there", len,
		                (size_t)(end - p) > 0 ? (size_t)(end - p) - 1 : 0);
	entry->msg = p;
	entry->size = len;
	entry->next = p + len + 1;
	return 0;
}

bool
ms_spool_link_name_valid(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > MS_SPOOL_LINK_MAX || name[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '.' || name[i] == '_' ||
		      name[i] == '-'))
			return false;
	}
	return true;
}

/* A link record (format 3): "@<name>\n", the name of a file in msg/. */
static int
next_link(struct ms_spool_entry *entry, char *err, size_t errlen)
{
	const unsigned char *p = entry->next + 1, *end = entry->end, *nl;
	size_t len;

	nl = memchr(p, '\n', (size_t)(end - p));
	len = nl == NULL ? 0 : (size_t)(nl - p);
	if (!ms_spool_link_name_valid((const char *)p, len))
		return ms_error(err, errlen, "bad link line");
	memcpy(entry->link, p, len);
	entry->link[len] = '\0';
	entry->next = nl + 1;
	return 0;
}

/* A reference record (format 4): "=new/<name>\n" or "=cur/<name>\n". */
static int
next_ref(struct ms_spool_entry *entry, char *err, size_t errlen)
{
	const unsigned char *p = entry->next + 1, *end = entry->end, *nl;
	size_t len;

	if (entry->next == end || *entry->next != '=')
		return ms_error(err, errlen, "bad reference line");
	nl = memchr(p, '\n', (size_t)(end - p));
	len = nl == NULL ? 0 : (size_t)(nl - p);
	if (!ms_spool_ref_valid((const char *)p, len))
		return ms_error(err, errlen, "bad reference line");
	memcpy(entry->ref, p, len);
	entry->ref[len] = '\0';
	entry->next = nl + 1;
	return 0;
}

bool
ms_spool_errno_transient(int error)
{
	switch (error) {
	case EMFILE:
	case ENFILE:
	case ENOMEM:
	case ENOBUFS:
	case EIO:
	case EINTR:
	case EAGAIN:
	case ENOSPC:
	case EDQUOT:
		return true;
	default:
		return false;
	}
}

static enum ms_spool_read_result
errno_result(int error)
{
	if (error == ENOENT)
		return MS_SPOOL_READ_GONE;
	/* else EACCES, ELOOP (a symlink), ...: this file will not get better */
	return ms_spool_errno_transient(error) ? MS_SPOOL_READ_ERROR : MS_SPOOL_READ_BAD;
}

static int
read_all(int fd, unsigned char *buf, size_t size)
{
	ssize_t ret;
	size_t pos = 0;

	while (pos < size) {
		ret = read(fd, buf + pos, size - pos);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0)
			return ret < 0 ? -1 : 1;
		pos += (size_t)ret;
	}
	return 0;
}

/* Keeps data until ms_spool_release(). */
static int
hold(struct ms_spool_entry *entry, unsigned char *data)
{
	unsigned char **bigger;

	if (entry->nheld == entry->held_cap) {
		entry->held_cap = entry->held_cap == 0 ? 64 : entry->held_cap * 2;
		bigger = realloc(entry->held, entry->held_cap * sizeof(*bigger));
		if (bigger == NULL)
			return -1;
		entry->held = bigger;
	}
	entry->held[entry->nheld++] = data;
	return 0;
}

/* Skips the linked message with a reason (1), or -2 for trouble that a
 * later try may not have. */
static int
link_skip(struct ms_spool_entry *entry, int error, const char *what)
{
	snprintf(entry->link_why, sizeof(entry->link_why), "%s%s%s", what, error != 0 ? ": " : "",
	         error != 0 ? strerror(error) : "");
	if (error != 0 && errno_result(error) == MS_SPOOL_READ_ERROR)
		return -2;
	entry->link_error = entry->link_why;
	return 1;
}

/* Opens the current message's file: msg/<link>, or the Maildir file a
 * reference names (under its new name if Dovecot renamed it). -1 with errno
 * set and *why_r what failed; path names the file. */
static int
open_message(struct ms_spool_entry *entry, char *path, size_t size, const char **why_r, char *err,
             size_t errlen)
{
	int fd, found;

	*why_r = "open";
	if (entry->ref[0] == '\0') {
		if (spool_path(path, size, entry->spool_dir, MS_SPOOL_LINK_DIR, entry->link) < 0) {
			errno = ENAMETOOLONG;
			return -1;
		}
	} else if (snprintf(path, size, "%s/%s", entry->maildir, entry->ref) >= (int)size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT || entry->ref[0] == '\0') {
		if (fd < 0 && errno == ENOENT)
			*why_r = "missing";
		return fd;
	}
	found = ms_spool_lookup_find(&entry->lookup, entry->maildir, entry->ref, false, path, size,
	                             err, errlen);
	if (found == 0) {
		snprintf(path, size, "%s/%s", entry->maildir, entry->ref);
		*why_r = "gone";
		errno = ENOENT;
		return -1;
	}
	if (found < 0) {
		*why_r = "readdir";
		return -1;
	}
	return open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

/* Reads msg/<entry->link> or the referenced Maildir file into entry->msg: 1,
 * or -2 (err says why). */
static int
load_message(struct ms_spool_entry *entry, char *err, size_t errlen)
{
	char path[PATH_MAX];
	unsigned char *data = NULL;
	const char *why;
	struct stat st;
	int fd, ret;

	if ((fd = open_message(entry, path, sizeof(path), &why, err, errlen)) < 0) {
		ret = link_skip(entry, errno, why);
	} else if (fstat(fd, &st) < 0) {
		ret = link_skip(entry, errno, "fstat");
	} else if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		ret = link_skip(entry, 0, "empty or not a regular file");
	} else if ((unsigned long long)st.st_size > entry->link_max) {
		entry->size = (size_t)st.st_size;
		ret = link_skip(entry, 0, "too big");
	} else if ((data = malloc((size_t)st.st_size)) == NULL || hold(entry, data) < 0) {
		free(data);
		ret = link_skip(entry, ENOMEM, "malloc");
	} else if ((ret = read_all(fd, data, (size_t)st.st_size)) != 0) {
		ret = ret < 0 ? link_skip(entry, errno, "read") : link_skip(entry, 0, "shrank");
	} else {
		entry->msg = data;
		entry->size = (size_t)st.st_size;
		ret = 1;
	}
	if (fd >= 0)
		(void)close(fd);
	if (ret < 0) {
		ms_error(err, errlen, "%s: %s", path, entry->link_why);
		return -2;
	}
	return ret;
}

int
ms_spool_next(struct ms_spool_entry *entry, char *err, size_t errlen)
{
	char why[256];
	int ret;

	entry->link[0] = '\0';
	entry->ref[0] = '\0';
	entry->link_error = NULL;
	if (entry->version == 1)
		return entry->index++ == 0 ? 1 : 0;
	if (entry->index == entry->count) {
		if (entry->next != entry->end)
			return ms_error(err, errlen, "data after the last of %u messages",
			                entry->count);
		return 0;
	}
	if (entry->version == 4)
		ret = next_ref(entry, why, sizeof(why));
	else if (entry->version == 3 && entry->next < entry->end && *entry->next == '@')
		ret = next_link(entry, why, sizeof(why));
	else
		ret = next_record(entry, why, sizeof(why));
	if (ret < 0)
		return ms_error(err, errlen, "message %u of %u: %s", entry->index + 1, entry->count,
		                why);
	entry->index++;
	if (entry->link[0] == '\0' && entry->ref[0] == '\0')
		return 1;
	entry->msg = NULL;
	entry->size = 0;
	return entry->spool_dir == NULL ? 1 : load_message(entry, err, errlen);
}

void
ms_spool_release(struct ms_spool_entry *entry)
{
	size_t i;

	for (i = 0; i < entry->nheld; i++)
		free(entry->held[i]);
	entry->nheld = 0;
}

int
ms_spool_remove_links(const char *spool_dir, const struct ms_spool_entry *entry, char *err,
                      size_t errlen)
{
	struct ms_spool_entry walk = *entry;
	char path[PATH_MAX], why[256];
	int ret = 0;

	if (entry->version != 3)
		return 0;
	/* the records again, from the first, without reading the files */
	walk.spool_dir = NULL;
	walk.next = walk.first;
	walk.index = 0;
	while (ms_spool_next(&walk, why, sizeof(why)) > 0) {
		if (walk.link[0] == '\0')
			continue;
		if (spool_path(path, sizeof(path), spool_dir, MS_SPOOL_LINK_DIR, walk.link) < 0 ||
		    (unlink(path) < 0 && errno != ENOENT)) {
			if (ret == 0)
				ret = ms_error(err, errlen, "unlink(%s): %s", path,
				               strerror(errno));
		}
	}
	return ret;
}

/* A batch may be bigger than one message: its first line says which. */
static size_t
size_limit(int fd, size_t max_size)
{
	unsigned char line[sizeof(MS_SPOOL_MAGIC_BATCH)];
	ssize_t ret = pread(fd, line, sizeof(line), 0);

	if (ret > 0 && magic_version(line, (size_t)ret) >= 2 && max_size < MS_SPOOL_BATCH_MAX)
		return MS_SPOOL_BATCH_MAX;
	return max_size;
}

/* Reads the file into entry->data; the caller parses it. */
static enum ms_spool_read_result
read_file(int fd, const char *path, size_t max_size, struct ms_spool_entry *entry, char *err,
          size_t errlen)
{
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0) {
		ms_error(err, errlen, "fstat(%s): %s", path, strerror(errno));
		return errno_result(errno);
	}
	if (S_ISREG(st.st_mode))
		max_size = size_limit(fd, max_size);
	if (!S_ISREG(st.st_mode) || (unsigned long long)st.st_size > max_size) {
		ms_error(err, errlen, "%s: not a regular file or larger than %zu bytes", path,
		         max_size);
		return MS_SPOOL_READ_BAD;
	}
	entry->data_size = (size_t)st.st_size;
	if ((entry->data = malloc(entry->data_size + 1)) == NULL) {
		ms_error(err, errlen, "out of memory for %s", path);
		return MS_SPOOL_READ_ERROR;
	}
	if ((ret = read_all(fd, entry->data, entry->data_size)) != 0) {
		ms_error(err, errlen, "read(%s): %s", path,
		         ret < 0 ? strerror(errno) : "file shrank while reading");
		return ret < 0 ? errno_result(errno) : MS_SPOOL_READ_BAD;
	}
	return MS_SPOOL_READ_OK;
}

enum ms_spool_read_result
ms_spool_read(const char *spool_dir, const char *name, size_t max_size,
              struct ms_spool_entry *entry, char *err, size_t errlen)
{
	enum ms_spool_read_result result;
	unsigned char *data;
	char path[PATH_MAX];
	size_t size;
	int fd;

	memset(entry, 0, sizeof(*entry));
	if (spool_path(path, sizeof(path), spool_dir, "new", name) < 0) {
		ms_error(err, errlen, "%s: path too long", spool_dir);
		return MS_SPOOL_READ_BAD;
	}
	/* O_NONBLOCK: a FIFO dropped into new/ must not hang the learner */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
		ms_error(err, errlen, "open(%s): %s", path, strerror(errno));
		return errno_result(errno);
	}
	result = read_file(fd, path, max_size, entry, err, errlen);
	(void)close(fd);
	data = entry->data;
	size = entry->data_size;
	if (result == MS_SPOOL_READ_OK && ms_spool_parse(data, size, name, entry, err, errlen) < 0)
		result = MS_SPOOL_READ_BAD;
	entry->data = data;
	entry->data_size = size;
	entry->spool_dir = spool_dir;
	entry->link_max = max_size;
	if (result != MS_SPOOL_READ_OK)
		ms_spool_entry_free(entry);
	return result;
}

void
ms_spool_entry_free(struct ms_spool_entry *entry)
{
	ms_spool_release(entry);
	ms_spool_lookup_free(&entry->lookup);
	free(entry->held);
	free(entry->data);
	memset(entry, 0, sizeof(*entry));
}

int
ms_spool_remove(const char *spool_dir, const char *name, char *err, size_t errlen)
{
	char path[PATH_MAX];

	if (spool_path(path, sizeof(path), spool_dir, "new", name) < 0)
		return ms_error(err, errlen, "%s: path too long", spool_dir);
	if (unlink(path) < 0 && errno != ENOENT)
		return ms_error(err, errlen, "unlink(%s): %s", path, strerror(errno));
	return 0;
}

int
ms_spool_reject(const char *spool_dir, const char *name, char *err, size_t errlen)
{
	char from[PATH_MAX], to[PATH_MAX], bad[PATH_MAX];

	if (spool_path(from, sizeof(from), spool_dir, "new", name) < 0 ||
	    spool_path(to, sizeof(to), spool_dir, "bad", name) < 0 ||
	    spool_path(bad, sizeof(bad), spool_dir, "bad", "") < 0)
		return ms_error(err, errlen, "%s: path too long", spool_dir);
	if (mkdir(bad, 0700) < 0 && errno != EEXIST)
		ms_error(err, errlen, "mkdir(%s): %s", bad, strerror(errno));
	if (rename(from, to) == 0 || errno == ENOENT)
		return 0;
	/* Never read a bad file twice: dropping it beats looping on it. */
	if (unlink(from) == 0 || errno == ENOENT)
		return 0;
	return ms_error(err, errlen, "rename/unlink(%s): %s", from, strerror(errno));
}

/* msg/<unique>.<n> belongs to tmp/<unique>, new/spam.<unique> or
 * new/ham.<unique>. tmp/ is looked at first: a commit renames the manifest
 * from there into new/, so it is always found in one of them. */
static bool
link_has_manifest(const char *spool_dir, const char *name)
{
	static const char *const places[][2] = {{"tmp", ""}, {"new", "spam."}, {"new", "ham."}};
	const char *dot = strrchr(name, '.');
	char unique[NAME_MAX + 1], path[PATH_MAX];
	struct stat st;
	size_t i;

	if (dot == NULL || dot == name || (size_t)(dot - name) >= sizeof(unique))
		return false;
	memcpy(unique, name, (size_t)(dot - name));
	unique[dot - name] = '\0';
	for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s/%s%s", spool_dir, places[i][0],
		             places[i][1], unique) < (int)sizeof(path) &&
		    lstat(path, &st) == 0)
			return true;
	}
	return false;
}

/* Removes the files of sub/ whose ctime is older than max_age seconds (a
 * link sets it: a linked file keeps the message's old mtime), unless
 * keep() says their manifest still needs them. */
static int
clean_old(const char *spool_dir, const char *sub, unsigned int max_age,
          bool (*keep)(const char *spool_dir, const char *name), char *err, size_t errlen)
{
	char dir_path[PATH_MAX], path[PATH_MAX];
	time_t now = time(NULL);
	struct dirent *d;
	struct stat st;
	int count = 0;
	DIR *dir;

	if (spool_path(dir_path, sizeof(dir_path), spool_dir, sub, "") < 0)
		return ms_error(err, errlen, "%s: path too long", spool_dir);
	if ((dir = opendir(dir_path)) == NULL)
		return ms_error(err, errlen, "opendir(%s): %s", dir_path, strerror(errno));
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.' ||
		    spool_path(path, sizeof(path), spool_dir, sub, d->d_name) < 0)
			continue;
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_ctime + (time_t)max_age < now &&
		    (keep == NULL || !keep(spool_dir, d->d_name)) && unlink(path) == 0)
			count++;
	}
	(void)closedir(dir);
	return count;
}

int
ms_spool_clean_tmp(const char *spool_dir, unsigned int max_age, char *err, size_t errlen)
{
	return clean_old(spool_dir, "tmp", max_age, NULL, err, errlen);
}

int
ms_spool_clean_links(const char *spool_dir, unsigned int max_age, char *err, size_t errlen)
{
	return clean_old(spool_dir, MS_SPOOL_LINK_DIR, max_age, link_has_manifest, err, errlen);
}
