/* fuzz-sources: ms-userdb.c ms-path.c */
#include "ms-userdb.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Each line of the input as a passwd-file line: the splitter must stay
 * inside the line and every field it returns must be a string in it. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_userdb_line line;
	const char *problem;
	char *text, *p, *nl;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (p = text; p != NULL; p = nl) {
		if ((nl = strchr(p, '\n')) != NULL)
			*nl++ = '\0';
		if (ms_userdb_parse_line(p, &line, &problem) == 1) {
			if (strchr(line.name, ':') != NULL || strchr(line.uid, ':') != NULL ||
			    strchr(line.gid, ':') != NULL || strchr(line.home, ':') != NULL)
				abort();
			if (line.name[0] == '\0')
				abort();
			(void)strlen(line.mail);
		}
	}
	free(text);
	return 0;
}
