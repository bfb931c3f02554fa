/* fuzz-sources: ms-path.c */
#include "ms-path.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A recipient (any bytes) on its way to a Maildir path. Whatever the
 * bytes, a recipient that passes the safety check expands under the
 * template's own directory, one level per variable, never elsewhere. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_path_vars vars;
	char *addr, *at, local[300], path[1024], want[1024], err[256];

	if (!ms_path_safe_address((const char *)data, size))
		return 0;
	if ((addr = malloc(size + 1)) == NULL)
		return 0;
	memcpy(addr, data, size);
	addr[size] = '\0';
	at = strchr(addr, '@');
	snprintf(local, sizeof(local), "%.*s", (int)(at - addr), addr);
	vars = (struct ms_path_vars){addr, local, at + 1, "/home/x"};
	if (strchr(local, '/') != NULL || strchr(at + 1, '/') != NULL || strcmp(local, "..") == 0 ||
	    strcmp(at + 1, "..") == 0)
		abort();
	if (ms_path_expand("maildir:/var/vmail/%d/%n", &vars, path, sizeof(path), err,
	                   sizeof(err)) == 0) {
		snprintf(want, sizeof(want), "/var/vmail/%s/%s", at + 1, local);
		if (strcmp(path, want) != 0)
			abort();
	}
	(void)ms_path_expand("~/Maildir/%u/%{domain}", &vars, path, sizeof(path), err, sizeof(err));
	free(addr);
	return 0;
}
