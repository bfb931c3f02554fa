#include "ms-maildir-keywords.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MS_KEYWORD_LEN        128
#define MS_DOTLOCK_STALE_SECS 30
#define MS_DOTLOCK_WAIT_TRIES 200 /* x 10 ms */

struct keyword_map {
	char names[MS_MAILDIR_KEYWORDS_MAX][MS_KEYWORD_LEN];
	bool used[MS_MAILDIR_KEYWORDS_MAX];
};

static void
read_map(const char *path, struct keyword_map *map)
{
	char line[MS_KEYWORD_LEN + 16], *name, *end;
	FILE *f = fopen(path, "r");
	long idx;

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		idx = strtol(line, &end, 10);
		if (end == line || *end != ' ' || idx < 0 || idx >= MS_MAILDIR_KEYWORDS_MAX)
			continue;
		name = end + 1;
		if (*name == '\0' || strlen(name) >= MS_KEYWORD_LEN)
			continue;
		strcpy(map->names[idx], name);
		map->used[idx] = true;
	}
	fclose(f);
}

/* Index of name, adding it at the first free index; -1 when full. */
static int
map_index(struct keyword_map *map, const char *name, bool *added)
{
	int i, free_idx = -1;

	for (i = 0; i < MS_MAILDIR_KEYWORDS_MAX; i++) {
		if (map->used[i] && strcmp(map->names[i], name) == 0)
			return i;
		if (!map->used[i] && free_idx < 0)
			free_idx = i;
	}
	if (free_idx >= 0) {
		snprintf(map->names[free_idx], MS_KEYWORD_LEN, "%s", name);
		map->used[free_idx] = true;
		*added = true;
	}
	return free_idx;
}

/* Dovecot's dotlock: create the .lock exclusively; a lock older than
 * MS_DOTLOCK_STALE_SECS is someone's crash and is taken over. */
static int
dotlock(const char *lock)
{
	struct stat st;
	int fd, tries;

	for (tries = 0; tries < MS_DOTLOCK_WAIT_TRIES; tries++) {
		fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
		if (stat(lock, &st) == 0 && st.st_mtime + MS_DOTLOCK_STALE_SECS < time(NULL))
			(void)unlink(lock);
		else
			usleep(10000);
	}
	errno = EAGAIN;
	return -1;
}

static int
write_map(int fd, const struct keyword_map *map)
{
	char buf[MS_MAILDIR_KEYWORDS_MAX * (MS_KEYWORD_LEN + 8)];
	size_t len = 0;
	int i;

	for (i = 0; i < MS_MAILDIR_KEYWORDS_MAX; i++) {
		if (map->used[i])
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%d %s\n", i,
			                        map->names[i]);
	}
	return write(fd, buf, len) == (ssize_t)len && fsync(fd) == 0 ? 0 : -1;
}

/* Next space-separated keyword of *p into name; false at the end. Names
 * too long for the file are skipped. */
static bool
next_keyword(const char **p, char name[MS_KEYWORD_LEN])
{
	while (**p != '\0') {
		size_t len = strcspn(*p, " ");
		bool fits = len > 0 && len < MS_KEYWORD_LEN;

		if (fits) {
			memcpy(name, *p, len);
			name[len] = '\0';
		}
		*p += len + ((*p)[len] == ' ');
		if (fits)
			return true;
	}
	return false;
}

/* Adds keywords to map; true if any was new. */
static bool
add_keywords(struct keyword_map *map, const char *keywords)
{
	char name[MS_KEYWORD_LEN];
	bool added = false;

	while (next_keyword(&keywords, name))
		(void)map_index(map, name, &added);
	return added;
}

static int
update_file(const char *fdir, const char *keywords, struct keyword_map *map, char *err,
            size_t errlen)
{
	char path[PATH_MAX], lock[PATH_MAX];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/dovecot-keywords", fdir);
	snprintf(lock, sizeof(lock), "%s/dovecot-keywords.lock", fdir);
	if ((fd = dotlock(lock)) < 0) {
		snprintf(err, errlen, "lock %s: %s", lock, strerror(errno));
		return -1;
	}
	/* re-read under the lock: someone may have added keywords */
	memset(map, 0, sizeof(*map));
	read_map(path, map);
	(void)add_keywords(map, keywords);
	if (write_map(fd, map) < 0 || rename(lock, path) < 0) {
		snprintf(err, errlen, "write %s: %s", path, strerror(errno));
		(void)unlink(lock);
		ret = -1;
	}
	close(fd);
	return ret;
}

int
ms_maildir_keyword_letters(const char *fdir, const char *keywords, char *letters, char *err,
                           size_t errlen)
{
	struct keyword_map map, probe;
	char path[PATH_MAX], name[MS_KEYWORD_LEN];
	bool want[MS_MAILDIR_KEYWORDS_MAX] = {false}, added;
	size_t n = 0;
	int i;

	letters[0] = '\0';
	if (keywords == NULL || *keywords == '\0')
		return 0;
	snprintf(path, sizeof(path), "%s/dovecot-keywords", fdir);
	memset(&map, 0, sizeof(map));
	read_map(path, &map);
	probe = map;
	if (add_keywords(&probe, keywords) && update_file(fdir, keywords, &map, err, errlen) < 0)
		return -1;
	while (next_keyword(&keywords, name)) {
		added = false;
		probe = map;
		i = map_index(&probe, name, &added);
		if (i >= 0 && !added)
			want[i] = true;
	}
	for (i = 0; i < MS_MAILDIR_KEYWORDS_MAX; i++) {
		if (want[i])
			letters[n++] = (char)('a' + i);
	}
	letters[n] = '\0';
	return 0;
}
