/* fuzz-sources: ms-util.c ms-spool.c ms-spool-reader.c */
#include "ms-spool.h"

#include <stdint.h>
#include <string.h>

/* The learner parses whatever lands in new/: the header parser must reject
 * anything malformed without reading past the file. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_spool_entry entry;
	char err[256];

	if (ms_spool_parse(data, size, "spam.1", &entry, err, sizeof(err)) == 0) {
		if (entry.msg < data || entry.msg + entry.size != data + size || entry.size == 0)
			__builtin_trap();
	}
	return 0;
}
