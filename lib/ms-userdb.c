#include "ms-userdb.h"
#include "ms-path.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define USERDB_PREFIX "passwd-file:"

struct userdb_entry {
	const char *name, *home, *mail;
	uid_t uid;
	gid_t gid;
	unsigned int lineno;
	const char *problem; /* non-NULL: the line is broken, lookups TEMPFAIL */
};

struct ms_userdb {
	char *path;
	uid_t default_uid;
	gid_t default_gid;
	/* what the loaded copy was read from: a change means reload */
	bool loaded;
	struct stat st;
	char *text;
	struct userdb_entry *entries;
	size_t count;
};

static int
parse_id(const char *str, unsigned long *id_r)
{
	char *end;

	if (!isdigit((unsigned char)*str))
		return -1;
	errno = 0;
	*id_r = strtoul(str, &end, 10);
	if (errno != 0 || *end != '\0' || *id_r >= UINT32_MAX)
		return -1;
	return 0;
}

int
ms_userdb_parse_uid(const char *str, uid_t *uid_r)
{
	struct passwd *pw;
	unsigned long id;

	if (parse_id(str, &id) == 0) {
		*uid_r = (uid_t)id;
		return 0;
	}
	if (*str == '\0' || (pw = getpwnam(str)) == NULL)
		return -1;
	*uid_r = pw->pw_uid;
	return 0;
}

int
ms_userdb_parse_gid(const char *str, gid_t *gid_r)
{
	struct group *gr;
	unsigned long id;

	if (parse_id(str, &id) == 0) {
		*gid_r = (gid_t)id;
		return 0;
	}
	if (*str == '\0' || (gr = getgrnam(str)) == NULL)
		return -1;
	*gid_r = gr->gr_gid;
	return 0;
}

/* "userdb_mail=..." among the space separated extra fields, or "". */
static const char *
find_extra_mail(char *extra)
{
	char *field, *save = NULL;

	for (field = strtok_r(extra, " \t", &save); field != NULL;
	     field = strtok_r(NULL, " \t", &save)) {
		if (strncmp(field, "userdb_mail=", 12) == 0)
			return field + 12;
	}
	return "";
}

int
ms_userdb_parse_line(char *line, struct ms_userdb_line *line_r, const char **problem_r)
{
	char *fields[8] = {NULL}, *p = line;
	size_t len = strlen(line);
	int i;

	if (len > 0 && line[len - 1] == '\r')
		line[len - 1] = '\0';
	if (line[0] == '\0' || line[0] == '#')
		return 0;
	/* the 8th field (extra) keeps its colons: userdb_mail=maildir:~/x */
	for (i = 0; i < 8 && p != NULL; i++) {
		fields[i] = p;
		if (i < 7 && (p = strchr(p, ':')) != NULL)
			*p++ = '\0';
	}
	if (fields[0][0] == '\0') {
		*problem_r = "empty user name";
		return -1;
	}
	line_r->name = fields[0];
	line_r->uid = fields[2] != NULL ? fields[2] : "";
	line_r->gid = fields[3] != NULL ? fields[3] : "";
	line_r->home = fields[5] != NULL ? fields[5] : "";
	line_r->mail = fields[7] != NULL ? find_extra_mail(fields[7]) : "";
	return 1;
}

static void
entry_from_line(struct ms_userdb *db, const struct ms_userdb_line *line, struct userdb_entry *entry)
{
	entry->name = line->name;
	entry->home = line->home;
	entry->mail = line->mail;
	entry->problem = NULL;
	entry->uid = db->default_uid;
	entry->gid = db->default_gid;
	if (line->uid[0] != '\0' && ms_userdb_parse_uid(line->uid, &entry->uid) < 0)
		entry->problem = "unknown uid";
	else if (line->gid[0] != '\0' && ms_userdb_parse_gid(line->gid, &entry->gid) < 0)
		entry->problem = "unknown gid";
	else if (line->home[0] != '\0' && line->home[0] != '/')
		entry->problem = "home is not an absolute path";
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct userdb_entry *ea = a, *eb = b;
	int ret = strcasecmp(ea->name, eb->name);

	/* duplicates: the first line wins, as in a linear scan */
	if (ret == 0)
		ret = ea->lineno < eb->lineno ? -1 : ea->lineno > eb->lineno;
	return ret;
}

static int
parse_text(struct ms_userdb *db)
{
	struct ms_userdb_line line;
	struct userdb_entry *entries = NULL, *grown;
	size_t count = 0, cap = 0;
	unsigned int lineno = 0;
	const char *problem;
	char *p = db->text, *nl;

	for (; *p != '\0'; p = nl) {
		lineno++;
		if ((nl = strchr(p, '\n')) != NULL)
			*nl++ = '\0';
		else
			nl = p + strlen(p);
		if (ms_userdb_parse_line(p, &line, &problem) <= 0)
			continue; /* comments; lines without a name match nobody */
		if (count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			if ((grown = realloc(entries, cap * sizeof(*entries))) == NULL) {
				free(entries);
				return -1;
			}
			entries = grown;
		}
		entry_from_line(db, &line, &entries[count]);
		entries[count++].lineno = lineno;
	}
	if (count > 0)
		qsort(entries, count, sizeof(*entries), entry_cmp);
	db->entries = entries;
	db->count = count;
	return 0;
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void
unload(struct ms_userdb *db)
{
	free(db->entries);
	free(db->text);
	db->entries = NULL;
	db->text = NULL;
	db->count = 0;
	db->loaded = false;
}

/* Read the whole file; a file that changes while we read it is retried by
 * the next lookup rather than half-used. */
static int
load(struct ms_userdb *db, char *err, size_t errlen)
{
	struct stat before, after;
	ssize_t ret;
	size_t size, done = 0;
	char *text = NULL;
	int fd;

	unload(db);
	if ((fd = open(db->path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "userdb %s: %s", db->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &before) < 0 || (size_t)before.st_size > SIZE_MAX - 1 ||
	    (text = malloc((size_t)before.st_size + 1)) == NULL)
		goto fail;
	size = (size_t)before.st_size;
	while (done < size && (ret = read(fd, text + done, size - done)) != 0) {
		if (ret < 0 && errno != EINTR)
			goto fail;
		done += ret > 0 ? (size_t)ret : 0;
	}
	if (fstat(fd, &after) < 0)
		goto fail;
	if (done != size || !same_file(&before, &after)) {
		errno = EAGAIN;
		goto fail;
	}
	text[size] = '\0';
	/* a NUL byte would hide the rest of the file from the parser */
	if (memchr(text, '\0', size) != NULL) {
		errno = EINVAL;
		goto fail;
	}
	close(fd);
	db->text = text;
	if (parse_text(db) < 0) {
		snprintf(err, errlen, "userdb %s: out of memory", db->path);
		unload(db);
		return -1;
	}
	db->st = before;
	db->loaded = true;
	return 0;
fail:
	snprintf(err, errlen, "userdb %s: %s", db->path,
	         errno == EAGAIN ? "changed while being read" : strerror(errno));
	free(text);
	close(fd);
	return -1;
}

static int
refresh(struct ms_userdb *db, char *err, size_t errlen)
{
	struct stat st;

	if (stat(db->path, &st) < 0) {
		snprintf(err, errlen, "userdb %s: %s", db->path, strerror(errno));
		unload(db);
		return -1;
	}
	if (db->loaded && same_file(&st, &db->st))
		return 0;
	return load(db, err, errlen);
}

struct ms_userdb *
ms_userdb_create(const char *spec, uid_t default_uid, gid_t default_gid, char *err, size_t errlen)
{
	struct ms_userdb *db;
	const char *path = spec;

	if (strncmp(spec, USERDB_PREFIX, strlen(USERDB_PREFIX)) == 0)
		path += strlen(USERDB_PREFIX);
	else if (strchr(spec, ':') != NULL) {
		snprintf(err, errlen, "userdb \"%s\": only passwd-file:PATH is supported", spec);
		return NULL;
	}
	if (path[0] != '/') {
		snprintf(err, errlen, "userdb \"%s\": the file must be an absolute path", spec);
		return NULL;
	}
	if ((db = calloc(1, sizeof(*db))) == NULL || (db->path = strdup(path)) == NULL) {
		free(db);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	db->default_uid = default_uid;
	db->default_gid = default_gid;
	return db;
}

void
ms_userdb_destroy(struct ms_userdb **dbp)
{
	struct ms_userdb *db = *dbp;

	if (db == NULL)
		return;
	*dbp = NULL;
	unload(db);
	free(db->path);
	free(db);
}

static const struct userdb_entry *
find(const struct ms_userdb *db, const char *name)
{
	size_t lo = 0, hi = db->count, mid;
	int cmp;

	/* lower bound, so the first of duplicate lines is found */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		cmp = strcasecmp(db->entries[mid].name, name);
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < db->count && strcasecmp(db->entries[lo].name, name) == 0)
		return &db->entries[lo];
	return NULL;
}

/* "user+detail@domain" -> "user@domain" in buf; false if there is no detail. */
static bool
strip_detail(const char *address, char *buf, size_t bufsize)
{
	const char *at = strrchr(address, '@'), *plus = strchr(address, '+');

	if (at == NULL || plus == NULL || plus > at || plus == address)
		return false;
	snprintf(buf, bufsize, "%.*s%s", (int)(plus - address), address, at);
	return true;
}

static enum ms_userdb_result
fill_user(const struct ms_userdb *db, const struct userdb_entry *entry, struct ms_user *user,
          char *err, size_t errlen)
{
	const char *at = strrchr(entry->name, '@');

	if (entry->problem != NULL) {
		snprintf(err, errlen, "userdb %s:%u: %s", db->path, entry->lineno, entry->problem);
		return MS_USERDB_TEMPFAIL;
	}
	if (at == NULL || strlen(entry->name) >= sizeof(user->name) ||
	    strlen(entry->home) >= sizeof(user->home) ||
	    strlen(entry->mail) >= sizeof(user->mail)) {
		snprintf(err, errlen, "userdb %s:%u: field too long", db->path, entry->lineno);
		return MS_USERDB_TEMPFAIL;
	}
	strcpy(user->name, entry->name);
	snprintf(user->local, sizeof(user->local), "%.*s", (int)(at - entry->name), entry->name);
	strcpy(user->domain, at + 1);
	strcpy(user->home, entry->home);
	strcpy(user->mail, entry->mail);
	user->uid = entry->uid;
	user->gid = entry->gid;
	return MS_USERDB_FOUND;
}

enum ms_userdb_result
ms_userdb_lookup(struct ms_userdb *db, const char *address, struct ms_user *user_r, char *err,
                 size_t errlen)
{
	const struct userdb_entry *entry;
	char base[MS_USER_NAME_MAX];

	if (!ms_path_safe_address(address, strlen(address))) {
		snprintf(err, errlen, "unknown user (not a safe address)");
		return MS_USERDB_NOUSER;
	}
	if (refresh(db, err, errlen) < 0)
		return MS_USERDB_TEMPFAIL;
	entry = find(db, address);
	if (entry == NULL && strip_detail(address, base, sizeof(base)))
		entry = find(db, base);
	if (entry == NULL) {
		snprintf(err, errlen, "unknown user");
		return MS_USERDB_NOUSER;
	}
	return fill_user(db, entry, user_r, err, errlen);
}
