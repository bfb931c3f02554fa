/* fuzz-sources: ms-path.c */
#include "ms-path.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Any mail_location template: expansion stays in bounds, and a result is
 * always absolute with no "." or ".." component. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ms_path_vars vars = {"u@example.test", "u", "example.test", "/home/u"};
	char *location, path[256], err[256];

	if ((location = malloc(size + 1)) == NULL)
		return 0;
	memcpy(location, data, size);
	location[size] = '\0';
	if (ms_path_expand(location, &vars, path, sizeof(path), err, sizeof(err)) == 0) {
		if (path[0] != '/' || strstr(path, "/../") != NULL || strstr(path, "/./") != NULL)
			abort();
		if (strlen(path) >= sizeof(path))
			abort();
	}
	free(location);
	return 0;
}
