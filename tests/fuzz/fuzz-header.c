/* fuzz-sources: ms-util.c ms-header.c ms-maildir.c ms-maildir-keywords.c ms-path.c */
#include "ms-header.h"
#include "ms-maildir.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The header rewrite on any bytes: it stays in bounds, only ever drops
 * lines, and no X-Spam-* field survives it. The Maildir sizes of the same
 * bytes, split anywhere, match a plain count. */
static void
check_filter(const uint8_t *data, size_t size)
{
	size_t hdrlen = ms_header_length(data, size), n, p, end;
	unsigned char *out;
	char rp[64];

	if (hdrlen > size)
		abort();
	if ((out = malloc(hdrlen + 1)) == NULL)
		return;
	n = ms_header_filter(data, hdrlen, out);
	if (n > hdrlen)
		abort();
	for (p = 0; p < n; p = end) {
		const unsigned char *nl = memchr(out + p, '\n', n - p);

		end = nl == NULL ? n : (size_t)(nl - out) + 1;
		/* a field start (no leading blank) named X-Spam-* must be gone */
		if (end - p >= 7 && strncasecmp((const char *)out + p, "X-Spam-", 7) == 0 &&
		    memchr(out + p, ':', end - p) != NULL)
			abort();
	}
	(void)ms_header_top_delivered_to(data, hdrlen, "user@example.test");
	if (ms_header_return_path(data, hdrlen, rp, sizeof(rp)) && strlen(rp) >= sizeof(rp))
		abort();
	(void)ms_header_mbox_from_length(data, size);
	free(out);
}

static void
check_sizes(const uint8_t *data, size_t size)
{
	struct ms_maildir_chunk chunks[2];
	size_t split = size > 0 ? data[0] % (size + 1) : 0, want = size, lfs = 0, got, vsize, i;

	for (i = 0; i < size; i++) {
		if (data[i] == '\n') {
			lfs++;
			if (i > 0 && data[i - 1] == '\r')
				want--;
		}
	}
	chunks[0] = (struct ms_maildir_chunk){data, split};
	chunks[1] = (struct ms_maildir_chunk){data + split, size - split};
	ms_maildir_sizes(chunks, 2, &got, &vsize);
	if (got != want || vsize != want + lfs)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_filter(data, size);
	check_sizes(data, size);
	return 0;
}
