#include "ms-dupdb.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define MS_DUPDB_HASH_LEN 16
#define MS_DUPDB_LINE_LEN (MS_DUPDB_HASH_LEN * 2 + 1 + 20 + 1)

struct ms_dupdb_entry {
	unsigned char hash[MS_DUPDB_HASH_LEN];
	long long expiry;
};

struct ms_dupdb {
	int fd;
	unsigned int max, count, alloc;
	struct ms_dupdb_entry *entries;
	bool changed;
};

static void
hash_id(const void *id, size_t size, unsigned char hash[MS_DUPDB_HASH_LEN])
{
	unsigned char full[SHA256_DIGEST_LENGTH];

	SHA256(id, size, full);
	memcpy(hash, full, MS_DUPDB_HASH_LEN);
}

static int
add_entry(struct ms_dupdb *db, const unsigned char *hash, long long expiry)
{
	if (db->count == db->alloc) {
		unsigned int alloc = db->alloc == 0 ? 64 : db->alloc * 2;
		struct ms_dupdb_entry *entries = realloc(db->entries, alloc * sizeof(*entries));

		if (entries == NULL)
			return -1;
		db->entries = entries;
		db->alloc = alloc;
	}
	memcpy(db->entries[db->count].hash, hash, MS_DUPDB_HASH_LEN);
	db->entries[db->count].expiry = expiry;
	db->count++;
	return 0;
}

/* One line: 32 hex digits, a space, the expiry. Anything else is skipped:
 * a damaged file costs duplicate suppression, never a delivery. */
static void
parse_line(struct ms_dupdb *db, const char *line, time_t now)
{
	unsigned char hash[MS_DUPDB_HASH_LEN];
	long long expiry;
	unsigned int i, byte;

	for (i = 0; i < MS_DUPDB_HASH_LEN; i++) {
		if (sscanf(line + i * 2, "%2x", &byte) != 1)
			return;
		hash[i] = (unsigned char)byte;
	}
	if (line[MS_DUPDB_HASH_LEN * 2] != ' ' ||
	    sscanf(line + MS_DUPDB_HASH_LEN * 2 + 1, "%lld", &expiry) != 1)
		return;
	if (expiry > (long long)now)
		(void)add_entry(db, hash, expiry);
	else
		db->changed = true;
}

static int
load(struct ms_dupdb *db)
{
	char line[MS_DUPDB_LINE_LEN + 2];
	FILE *f;
	int fd = dup(db->fd);

	if (fd < 0 || (f = fdopen(fd, "r")) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL)
		parse_line(db, line, time(NULL));
	fclose(f);
	return 0;
}

struct ms_dupdb *
ms_dupdb_open(const char *path, unsigned int max, char *err, size_t errlen)
{
	struct ms_dupdb *db = calloc(1, sizeof(*db));

	if (db == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	db->max = max == 0 ? 1 : max;
	db->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (db->fd < 0 || flock(db->fd, LOCK_EX) < 0 || load(db) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		ms_dupdb_rollback(db);
		return NULL;
	}
	return db;
}

/* The entry of HASH, or NULL. */
static struct ms_dupdb_entry *
find_entry(struct ms_dupdb *db, const unsigned char *hash)
{
	unsigned int i;

	for (i = 0; i < db->count; i++) {
		if (memcmp(db->entries[i].hash, hash, MS_DUPDB_HASH_LEN) == 0)
			return &db->entries[i];
	}
	return NULL;
}

bool
ms_dupdb_check(struct ms_dupdb *db, const void *id, size_t size, time_t now)
{
	unsigned char hash[MS_DUPDB_HASH_LEN];
	struct ms_dupdb_entry *entry;

	hash_id(id, size, hash);
	entry = find_entry(db, hash);
	return entry != NULL && entry->expiry > (long long)now;
}

void
ms_dupdb_mark(struct ms_dupdb *db, const void *id, size_t size, time_t expiry)
{
	unsigned char hash[MS_DUPDB_HASH_LEN];
	struct ms_dupdb_entry *entry;

	hash_id(id, size, hash);
	db->changed = true;
	entry = find_entry(db, hash);
	if (entry != NULL)
		entry->expiry = expiry;
	else
		(void)add_entry(db, hash, expiry);
}

static int
cmp_expiry_desc(const void *a, const void *b)
{
	const struct ms_dupdb_entry *ea = a, *eb = b;

	return ea->expiry < eb->expiry ? 1 : ea->expiry > eb->expiry ? -1 : 0;
}

static int
write_entries(struct ms_dupdb *db)
{
	char *buf, *p;
	unsigned int i, j, n = db->count < db->max ? db->count : db->max;
	size_t size;
	int ret = 0;

	qsort(db->entries, db->count, sizeof(*db->entries), cmp_expiry_desc);
	buf = malloc((size_t)n * MS_DUPDB_LINE_LEN + 1);
	if (buf == NULL)
		return -1;
	for (i = 0, p = buf; i < n; i++) {
		for (j = 0; j < MS_DUPDB_HASH_LEN; j++)
			p += sprintf(p, "%02x", db->entries[i].hash[j]);
		p += sprintf(p, " %lld\n", db->entries[i].expiry);
	}
	size = (size_t)(p - buf);
	if (ftruncate(db->fd, 0) < 0 || pwrite(db->fd, buf, size, 0) != (ssize_t)size)
		ret = -1;
	free(buf);
	return ret;
}

int
ms_dupdb_commit(struct ms_dupdb *db, char *err, size_t errlen)
{
	int ret = 0;

	if (db->changed && write_entries(db) < 0) {
		snprintf(err, errlen, "write: %s", strerror(errno));
		ret = -1;
	}
	ms_dupdb_rollback(db);
	return ret;
}

void
ms_dupdb_rollback(struct ms_dupdb *db)
{
	if (db->fd >= 0)
		close(db->fd);
	free(db->entries);
	free(db);
}
