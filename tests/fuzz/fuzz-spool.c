/* fuzz-sources: ms-util.c ms-spool.c ms-spool-reader.c */
#include "ms-spool.h"

#include <stdint.h>
#include <string.h>

/* The learner parses whatever lands in new/: the header parser and the
 * batch record reader must reject anything malformed without reading past
 * the file, every message they hand out must lie inside it, and a link
 * record must name a plain file of msg/, nothing outside it, and a
 * reference (format 4) a file name in new/ or cur/ of an absolute Maildir
 * path without "." or ".." components. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_spool_entry entry;
	unsigned int n = 0;
	char err[256];
	int ret;

	if (ms_spool_parse(data, size, "spam.1", &entry, err, sizeof(err)) < 0)
		return 0;
	if (entry.version == 1 &&
	    (entry.msg < data || entry.msg + entry.size != data + size || entry.size == 0))
		__builtin_trap();
	while ((ret = ms_spool_next(&entry, err, sizeof(err))) == 1) {
		/* a link record (format 3) names a file in msg/: not read here */
		/* a reference (format 4) names a Maildir file: not read here */
		if (entry.ref[0] != '\0') {
			if (entry.version != 4 || entry.msg != NULL ||
			    (strncmp(entry.ref, "new/", 4) != 0 &&
			     strncmp(entry.ref, "cur/", 4) != 0) ||
			    strchr(entry.ref + 4, '/') || entry.ref[4] == '.' ||
			    entry.maildir[0] != '/' || strstr(entry.maildir, "/../") ||
			    strstr(entry.maildir, "/./") || ++n > entry.count)
				__builtin_trap();
			continue;
		}
		if (entry.version == 4)
			__builtin_trap();
		if (entry.link[0] != '\0') {
			if (entry.version != 3 || entry.msg != NULL || strchr(entry.link, '/') ||
			    entry.link[0] == '.' || ++n > entry.count)
				__builtin_trap();
			continue;
		}
		if (entry.msg < data || entry.size == 0 || entry.size > size ||
		    entry.msg + entry.size > data + size || ++n > entry.count)
			__builtin_trap();
	}
	if (ret == 0 && n != entry.count)
		__builtin_trap();
	return 0;
}
