/* fuzz-sources: ms-util.c ms-control.c ms-spool.c */
#include "ms-control.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Anyone who can reach the learner socket sends request lines. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_control_req req;
	char *line, err[256];

	if ((line = malloc(size + 1)) == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	if (ms_control_parse(line, 35 * 1024 * 1024, &req, err, sizeof(err)) == 0 &&
	    strlen(req.user) > MS_SPOOL_USER_MAX)
		__builtin_trap();
	free(line);
	return 0;
}
