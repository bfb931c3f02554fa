#include "ms-digest.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Headers added or rewritten by transport, delivery and mail clients. */
static const char *const transient_headers[] = {
        "Received",   "Return-Path", "Delivered-To", "X-Original-To",    "Status",
        "X-Status",   "X-Keywords",  "X-UID",        "Content-Length",   "Lines",
        "X-IMAPbase", "X-IMAP",      "X-Spam-",      "X-Mozilla-Status",
};

static bool
is_transient(const unsigned char *line, size_t len)
{
	const unsigned char *colon = memchr(line, ':', len);
	size_t i, name_len, want_len;
	const char *want;

	if (colon == NULL)
		return false;
	name_len = (size_t)(colon - line);
	for (i = 0; i < sizeof(transient_headers) / sizeof(transient_headers[0]); i++) {
		want = transient_headers[i];
		want_len = strlen(want);
		/* "X-Spam-" and "X-Mozilla-Status" match as prefixes */
		if (name_len < want_len || strncasecmp((const char *)line, want, want_len) != 0)
			continue;
		if (name_len == want_len || want[want_len - 1] == '-' ||
		    strcmp(want, "X-Mozilla-Status") == 0)
			return true;
	}
	return false;
}

/* One line without its LF and any CR before it. */
static size_t
line_length(const unsigned char *line, size_t left, size_t *next_r)
{
	const unsigned char *lf = memchr(line, '\n', left);
	size_t len = lf != NULL ? (size_t)(lf - line) : left;

	*next_r = lf != NULL ? len + 1 : len;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

static int
hash_headers(EVP_MD_CTX *ctx, const unsigned char *msg, size_t size, size_t *body_r)
{
	size_t pos = 0, len, next;
	bool skipping = false;

	while (pos < size) {
		len = line_length(msg + pos, size - pos, &next);
		if (len == 0)
			break; /* end of the header */
		if (msg[pos] != ' ' && msg[pos] != '\t')
			skipping = is_transient(msg + pos, len);
		if (!skipping && (EVP_DigestUpdate(ctx, msg + pos, len) != 1 ||
		                  EVP_DigestUpdate(ctx, "\n", 1) != 1))
			return -1;
		pos += next;
	}
	*body_r = pos;
	return 0;
}

static int
hash_body(EVP_MD_CTX *ctx, const unsigned char *msg, size_t size)
{
	size_t pos = 0, len, next;

	/* trailing empty lines vary between mailbox formats */
	while (size > 0 && (msg[size - 1] == '\n' || msg[size - 1] == '\r'))
		size--;
	while (pos < size) {
		len = line_length(msg + pos, size - pos, &next);
		if (EVP_DigestUpdate(ctx, msg + pos, len) != 1 ||
		    EVP_DigestUpdate(ctx, "\n", 1) != 1)
			return -1;
		pos += next;
	}
	return 0;
}

int
ms_message_digest(const unsigned char *msg, size_t size, unsigned char digest[MS_DIGEST_SIZE])
{
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned int full_len;
	size_t body;
	EVP_MD_CTX *ctx;
	int ret = -1;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    hash_headers(ctx, msg, size, &body) == 0 &&
	    hash_body(ctx, msg + body, size - body) == 0 &&
	    EVP_DigestFinal_ex(ctx, full, &full_len) == 1 && full_len >= MS_DIGEST_SIZE) {
		memcpy(digest, full, MS_DIGEST_SIZE);
		ret = 0;
	}
	EVP_MD_CTX_free(ctx);
	return ret;
}
