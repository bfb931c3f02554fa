#ifndef MS_TOKENIZE_H
#define MS_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

/* A message's features as 64-bit hashes, sorted ascending, no duplicates:
 * what the classifier scores and the store counts. */
struct ms_tokens {
	uint64_t *hashes;
	size_t count;
	size_t capacity;
};

void ms_tokens_init(struct ms_tokens *tokens);
void ms_tokens_free(struct ms_tokens *tokens);

/* Parse and tokenize one whole message (CRLF or LF). Bounded: reads at most
 * a fixed number of bytes and MIME parts. Returns 0, or -1 only on memory
 * exhaustion; malformed mail still yields tokens. */
int ms_tokenize_message(const unsigned char *msg, size_t size, struct ms_tokens *tokens);

/* The lowest bit of a token's hash says whether it is a sparse word pair
 * (set) or any other token (clear): the classifier weighs pairs apart
 * (doc/classifier.md). The store's slots come from the top bits, so the
 * bit moves no token to another slot. */
#define MS_TOKEN_PAIR_BIT 1ULL

static inline int
ms_token_is_pair(uint64_t hash)
{
	return (hash & MS_TOKEN_PAIR_BIT) != 0;
}

/* The next bit says whether a token was made from the message's header
 * (set: Subject words and pairs, addresses, Received hosts, hdr:...) or from
 * its body and form (clear): the classifier scores the two apart
 * (doc/classifier.md). Like the pair bit it moves no token to another slot. */
#define MS_TOKEN_HEADER_BIT 2ULL

static inline int
ms_token_is_header(uint64_t hash)
{
	return (hash & MS_TOKEN_HEADER_BIT) != 0;
}

/* The third bit marks the body's metatokens, which describe the message's
 * form rather than its words (meta:... and att:...: content types, MIME
 * layout, HTML features, word and URL count buckets, attachments): the
 * classifier scores them as a third part (doc/classifier.md). Clear on
 * every other token, header tokens included; it moves no token either. */
#define MS_TOKEN_META_BIT 4ULL

static inline int
ms_token_is_meta(uint64_t hash)
{
	return (hash & MS_TOKEN_META_BIT) != 0;
}

/* The same, and calls cb with the text of every token as it is made (so
 * duplicates too), for tests and for looking at what the filter sees.
 * A token's hash is ms_hash64(text, len, 0) (ms-hash.h) with the pair bit
 * cleared, except sparse word pairs, whose text is
 * "osb<distance>:<first> <second>" and whose hash is ms_hash_pair() of the
 * two words' ms_hash64() with the pair bit set; then the header bit is set
 * for a token of the header, the meta bit for a metatoken of the body, and
 * each is cleared on every other token. */
typedef void ms_token_text_cb(const char *text, size_t len, uint64_t hash, void *context);
int ms_tokenize_message_debug(const unsigned char *msg, size_t size, struct ms_tokens *tokens,
                              ms_token_text_cb *cb, void *context);

#endif
