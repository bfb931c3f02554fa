/* fuzz-sources: ms-util.c ms-dupdb.c ms-maildir-keywords.c */
/* fuzz-flags: -lcrypto */
#include "ms-dupdb.h"
#include "ms-maildir-keywords.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The two files Sieve at delivery reads from a user's Maildir and home: the
 * duplicates file and a folder's dovecot-keywords. Either may be damaged or
 * written by someone else; reading, looking up and rewriting must hold. */
static char dir[64];

static void
write_file(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128], letters[MS_MAILDIR_KEYWORDS_MAX + 1], err[256];
	struct ms_dupdb *db;

	if (dir[0] == '\0') {
		strcpy(dir, "/tmp/ms-fuzz-sieve.XXXXXX");
		if (mkdtemp(dir) == NULL)
			abort();
	}
	snprintf(path, sizeof(path), "%s/dupes", dir);
	write_file(path, data, size);
	if ((db = ms_dupdb_open(path, 8, err, sizeof(err))) != NULL) {
		(void)ms_dupdb_check(db, data, size, time(NULL));
		ms_dupdb_mark(db, data, size, time(NULL) + 60);
		(void)ms_dupdb_commit(db, err, sizeof(err));
	}
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	write_file(path, data, size);
	(void)ms_maildir_keyword_letters(dir, "$label1 work \\bad", letters, err, sizeof(err));
	if (strlen(letters) > MS_MAILDIR_KEYWORDS_MAX)
		abort();
	return 0;
}
