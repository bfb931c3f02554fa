/* clang-format off */
/* fuzz-sources: ms-dovecot.c ms-hash.c ms-html.c ms-message.c ms-words.c ms-tokenize.c ms-tokenize-header.c ms-tokenize-auth.c */
/* fuzz-flags: -DHAVE_CONFIG_H -isystem /usr/include/dovecot -L/usr/lib/dovecot -Wl,-rpath,/usr/lib/dovecot -ldovecot */
/* clang-format on: run.sh reads each line above whole */
#include "ms-tokenize.h"
#include "ms-words.h"

#include <stdint.h>
#include <stdlib.h>

static void
text_cb(const char *text, size_t len, uint64_t hash, void *context)
{
	size_t *total = context;

	*total += len + (hash & 1) + (text[0] == 0);
}

/* The tokenizer on arbitrary messages (and the word splitter on arbitrary
 * text): no crash, the result sorted and unique. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_tokens tokens;
	struct ms_word word;
	size_t i, pos = 0, total = 0;

	ms_tokens_init(&tokens);
	if (ms_tokenize_message_debug(data, size, &tokens, text_cb, &total) == 0) {
		for (i = 1; i < tokens.count; i++) {
			if (tokens.hashes[i - 1] >= tokens.hashes[i])
				abort();
		}
	}
	ms_tokens_free(&tokens);
	while (ms_words_next(data, size, &pos, &word)) {
		if (word.len > MS_WORD_MAX || pos > size)
			abort();
	}
	return 0;
}
