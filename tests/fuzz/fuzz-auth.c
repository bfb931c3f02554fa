/* clang-format off */
/* fuzz-sources: ms-dovecot.c ms-hash.c ms-html.c ms-message.c ms-words.c ms-tokenize.c ms-tokenize-header.c ms-tokenize-auth.c */
/* fuzz-flags: -DHAVE_CONFIG_H -isystem /usr/include/dovecot -L/usr/lib/dovecot -Wl,-rpath,/usr/lib/dovecot -ldovecot */
/* clang-format on: run.sh reads each line above whole */
#include "ms-tokenize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const fields[] = {
        "Authentication-Results: ",
        "Received-SPF: ",
        "DKIM-Signature: ",
};

/* The authentication fields' parsers (ms-tokenize-auth.c) on arbitrary
 * values: the first byte picks the field, the rest is its value, kept on
 * one line so that it reaches the parser whole. No crash, no overread. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_tokens tokens;
	size_t i, n;
	const char *name;
	unsigned char *msg;

	if (size < 1)
		return 0;
	name = fields[data[0] % 3];
	n = strlen(name);
	if ((msg = malloc(n + size + 16)) == NULL)
		return 0;
	memcpy(msg, name, n);
	for (i = 1; i < size; i++)
		msg[n++] = data[i] == '\n' || data[i] == '\r' ? ' ' : data[i];
	memcpy(msg + n, "\n\nbody\n", 7);
	ms_tokens_init(&tokens);
	(void)ms_tokenize_message(msg, n + 7, &tokens);
	ms_tokens_free(&tokens);
	free(msg);
	return 0;
}
