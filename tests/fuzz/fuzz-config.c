/* fuzz-sources: ms-config.c */
#include "ms-config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One config line at a time, then free: finds overruns and leaks in the
 * key = value parser and every value parser behind it. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_config cfg;
	char *line, err[256];

	if ((line = malloc(size + 1)) == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	ms_config_init(&cfg);
	(void)ms_config_parse_line(&cfg, line, "fuzz", 1, err, sizeof(err));
	ms_config_free(&cfg);
	free(line);
	return 0;
}
