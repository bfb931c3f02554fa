#ifndef MS_TOKENIZE_PRIVATE_H
#define MS_TOKENIZE_PRIVATE_H

#include <stdbool.h>

#include "ms-message.h"
#include "ms-tokenize.h"
#include "ms-words.h"

/* Shared between ms-tokenize.c (sink, body words, pairs, metatokens) and
 * ms-tokenize-header.c (header fields, addresses, URL hosts). */

#define TOKEN_MAX    160 /* bytes of one token's text, prefix included */
#define OSB_WINDOW   2   /* a word pairs with the one before it: doc/tokenizer.md */
#define MAX_RECEIVED 8

struct tok_ctx {
	struct ms_tokens *tokens;
	ms_token_text_cb *text_cb; /* NULL unless debugging */
	void *text_context;
	bool failed; /* out of memory */
	/* the part bit tokens made now get: MS_TOKEN_HEADER_BIT,
	   MS_TOKEN_META_BIT (metatokens of the body) or 0 */
	uint64_t part_bit;

	/* sparse pairs: the last words of the current text */
	uint64_t window[OSB_WINDOW];
	char window_text[OSB_WINDOW][TOKEN_MAX];
	unsigned int window_fill;
	unsigned int body_words, urls;

	/* header facts settled at the end of the message */
	unsigned int received, recipients;
	bool seen_subject, seen_date, seen_message_id, seen_from;
	char from_domain[64], reply_to_domain[64];
};

/* Add the token prefix + text (text cut to fit TOKEN_MAX). Returns the hash
 * of its text, which pairs are made of; the token itself has the pair bit
 * cleared and the header and meta bits as ctx->part_bit says
 * (ms-tokenize.h): only low bits, so that every token keeps its store slot. */
uint64_t tok_add(struct tok_ctx *ctx, const char *prefix, const void *text, size_t len);
/* Add the sparse pair (first, second) at distance d. */
void tok_add_pair(struct tok_ctx *ctx, uint64_t first, const char *first_text, uint64_t second,
                  const char *second_text, unsigned int distance);

/* 0 for 0, else 1 + floor(log2(n)): counts as coarse features. */
unsigned int tok_log2_bucket(unsigned int n);

/* The token text of a word: itself, or its shape for numbers and IDs;
 * NUL-terminated, size at least MS_WORD_MAX + 8. Returns its length. */
size_t tok_word_text(const struct ms_word *word, char *buf, size_t size);

void tok_header(struct tok_ctx *ctx, const struct ms_piece *piece);
/* len bytes of src, lower-cased (ASCII) and cut to fit, NUL-terminated into
 * dest of size bytes. Returns the length copied. */
size_t tok_copy_lower(char *dest, size_t size, const unsigned char *src, size_t len);
/* A host name and each parent domain of two or more labels, under prefix. */
void tok_domain_parents(struct tok_ctx *ctx, const char *prefix, const char *host, size_t len);
/* The tokens of an authentication field (ms-tokenize-auth.c), if name (lower
 * case) is one: Authentication-Results, Received-SPF, DKIM-Signature.
 * Returns whether it was. */
bool tok_auth_field(struct tok_ctx *ctx, const char *name, const unsigned char *text, size_t len);
void tok_address(struct tok_ctx *ctx, const struct ms_piece *piece);
/* Host of a URL (after its scheme's "//", or from "www."), with its
 * parent domains, under prefix. */
void tok_url_host(struct tok_ctx *ctx, const char *prefix, const unsigned char *host, size_t len);
void tok_url(struct tok_ctx *ctx, const unsigned char *url, size_t len);
/* Tokens that need the whole header: missing fields, Reply-To vs From. */
void tok_header_finish(struct tok_ctx *ctx);

#endif
