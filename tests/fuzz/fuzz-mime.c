/* clang-format off */
/* fuzz-sources: ms-dovecot.c ms-html.c ms-message.c */
/* fuzz-flags: -DHAVE_CONFIG_H -isystem /usr/include/dovecot -L/usr/lib/dovecot -Wl,-rpath,/usr/lib/dovecot -ldovecot */
/* clang-format on: run.sh reads each line above whole */
#include "ms-message.h"

#include <stdint.h>
#include <string.h>

/* Reads every byte of every piece so that the sanitizers see any piece
 * pointing outside its buffer. */
static void
piece_cb(const struct ms_piece *piece, void *context)
{
	unsigned int *sum = context;
	size_t i;

	for (i = 0; i < piece->name_len; i++)
		*sum += (unsigned char)piece->name[i];
	for (i = 0; i < piece->text_len; i++)
		*sum += piece->text[i];
	for (i = 0; i < piece->display_len; i++)
		*sum += piece->display[i];
}

/* The whole message parser (MIME tree, decoders, charsets, HTML, addresses)
 * on arbitrary bytes, with small limits so that truncation paths run too. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_message_limits limits;
	unsigned int sum = 0;

	ms_message_limits_default(&limits);
	ms_message_parse(data, size, &limits, piece_cb, &sum);
	limits.max_parts = 3;
	limits.max_depth = 2;
	limits.max_part_text = 100;
	limits.max_total_text = 150;
	limits.max_bytes = size / 2;
	ms_message_parse(data, size, &limits, piece_cb, &sum);
	return sum == 0xFFFFFFFF ? 1 : 0;
}
