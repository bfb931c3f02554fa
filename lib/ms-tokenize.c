/* Tokens of a message, from the pieces ms-message.c reports. Token texts
 * (what ms_tokenize_message_debug shows):
 *   word               a body word, normalized (ms-words.h), 2+ characters
 *   num:N $num:N       a number of N digits (alone, or after a $)
 *   id:N               a long mix of letters and digits (IDs, hashes), N/4
 *   long:PREFIX        a word longer than MS_WORD_MAX, by its start
 *   osb1:a b           word a, then word b (sparse pairs with a window of
 *                      OSB_WINDOW; 2 measured best: doc/tokenizer.md)
 *   url:HOST url:PARENT urltld:TLD url:ip mailto:DOMAIN
 *   meta:KIND:VALUE    form of the message (ms-message.h MS_PIECE_META)
 *   meta:words:N meta:urls:N   log2 buckets of body words and URLs
 *   att:type:T att:ext:E att:noname
 * Header tokens are described in ms-tokenize-header.c. */
#include "ms-tokenize-private.h"

#include "ms-hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BODY_WORDS 20000

/* A long text repeats its words: a 200 KB one makes 40,000 tokens of which
 * 25,000 differ. Once the array holds this many, a full array first drops
 * its duplicates and grows only if that freed less than a quarter, so it
 * stays near the number of distinct tokens. The result is the same. */
#define TOKENS_COMPACT_MIN 4096

static int sort_unique(struct ms_tokens *tokens);

static int
tokens_grow(struct ms_tokens *tokens)
{
	size_t capacity = tokens->capacity == 0 ? 1024 : tokens->capacity * 2;
	uint64_t *hashes;

	if (tokens->capacity >= TOKENS_COMPACT_MIN) {
		if (sort_unique(tokens) < 0)
			return -1;
		if (tokens->count < tokens->capacity - tokens->capacity / 4)
			return 0;
	}
	if ((hashes = realloc(tokens->hashes, capacity * sizeof(*hashes))) == NULL)
		return -1;
	tokens->hashes = hashes;
	tokens->capacity = capacity;
	return 0;
}

static void
tok_push(struct tok_ctx *ctx, uint64_t hash, const char *text, size_t len)
{
	struct ms_tokens *tokens = ctx->tokens;

	hash = (hash & ~(MS_TOKEN_HEADER_BIT | MS_TOKEN_META_BIT)) | ctx->part_bit;
	if (tokens->count == tokens->capacity && tokens_grow(tokens) < 0) {
		ctx->failed = true;
		return;
	}
	tokens->hashes[tokens->count++] = hash;
	if (ctx->text_cb != NULL)
		ctx->text_cb(text, len, hash, ctx->text_context);
}

uint64_t
tok_add(struct tok_ctx *ctx, const char *prefix, const void *text, size_t len)
{
	char buf[TOKEN_MAX];
	size_t plen;
	const char *token = text;
	uint64_t hash;

	/* a body word has no prefix: its text is the token's, uncopied */
	if (prefix[0] == '\0') {
		if (len > sizeof(buf))
			len = sizeof(buf);
	} else {
		plen = strlen(prefix);
		if (len > sizeof(buf) - plen)
			len = sizeof(buf) - plen;
		memcpy(buf, prefix, plen);
		memcpy(buf + plen, text, len);
		len += plen;
		token = buf;
	}
	hash = ms_hash64(token, len, 0);
	tok_push(ctx, hash & ~MS_TOKEN_PAIR_BIT, token, len);
	return hash;
}

void
tok_add_pair(struct tok_ctx *ctx, uint64_t first, const char *first_text, uint64_t second,
             const char *second_text, unsigned int distance)
{
	char buf[TOKEN_MAX * 2 + 16];
	int len = 0;

	if (ctx->text_cb != NULL)
		len = snprintf(buf, sizeof(buf), "osb%u:%s %s", distance, first_text, second_text);
	tok_push(ctx, ms_hash_pair(first, second, distance) | MS_TOKEN_PAIR_BIT, buf,
	         len < 0                     ? 0
	         : (size_t)len < sizeof(buf) ? (size_t)len
	                                     : sizeof(buf) - 1);
}

/* The first n bytes of s, cut back to a UTF-8 character boundary. */
static size_t
utf8_prefix(const char *s, size_t len, size_t n)
{
	if (len <= n)
		return len;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* "prefix" followed by the decimal n, into buf (at least 24 bytes). */
static size_t
shape_text(char *buf, const char *prefix, unsigned int n)
{
	size_t len = strlen(prefix);
	char digits[12];
	int i = 0;

	memcpy(buf, prefix, len);
	do {
		digits[i++] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0 && i < (int)sizeof(digits));
	while (i > 0)
		buf[len++] = digits[--i];
	return len;
}

static size_t
word_text(const struct ms_word *word, char *buf)
{
	size_t n;

	if (word->truncated) {
		n = utf8_prefix(word->text, word->len, 10);
		memcpy(buf, "long:", 5);
		memcpy(buf + 5, word->text, n);
		return 5 + n;
	}
	if (word->has_digit && !word->has_alpha)
		return shape_text(buf, word->text[0] == '$' ? "$num:" : "num:",
		                  word->len > 12 ? 12 : (unsigned int)word->len);
	if (word->has_digit && word->nchars >= 12)
		return shape_text(buf, "id:", word->nchars / 4);
	memcpy(buf, word->text, word->len);
	return word->len;
}

size_t
tok_word_text(const struct ms_word *word, char *buf, size_t size)
{
	size_t n = size < MS_WORD_MAX + 8 ? 0 : word_text(word, buf);

	buf[n] = '\0';
	return n;
}

static void
add_pairs(struct tok_ctx *ctx, uint64_t hash, const char *text)
{
	unsigned int d, slot, fill = ctx->window_fill;

	for (d = 1; d < OSB_WINDOW && d <= fill; d++) {
		slot = (fill - d) % OSB_WINDOW;
		tok_add_pair(ctx, ctx->window[slot], ctx->window_text[slot], hash, text, d);
	}
	slot = fill % OSB_WINDOW;
	ctx->window[slot] = hash;
	if (ctx->text_cb != NULL)
		snprintf(ctx->window_text[slot], sizeof(ctx->window_text[slot]), "%s", text);
	ctx->window_fill++;
}

static bool
is_host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_' || c >= 0x80;
}

static bool
scheme_before(const unsigned char *text, size_t colon)
{
	static const char *const schemes[] = {"http", "https", "ftp"};
	size_t i, n;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		n = strlen(schemes[i]);
		if (colon >= n && strncasecmp((const char *)text + colon - n, schemes[i], n) == 0)
			return true;
	}
	return false;
}

/* URLs written in the text: "scheme://host..." and "www.host...". */
static void
text_urls(struct tok_ctx *ctx, const unsigned char *text, size_t len)
{
	size_t i, host, end;

	for (i = 0; i + 4 < len; i++) {
		if (text[i] == ':' && text[i + 1] == '/' && text[i + 2] == '/' &&
		    scheme_before(text, i))
			host = i + 3;
		else if ((text[i] | 0x20) == 'w' &&
		         strncasecmp((const char *)text + i, "www.", 4) == 0 &&
		         (i == 0 || !is_host_char(text[i - 1])))
			host = i;
		else
			continue;
		for (end = host; end < len && is_host_char(text[end]); end++)
			;
		if (end > host) {
			tok_url_host(ctx, "url:", text + host, end - host);
			ctx->urls++;
		}
		i = end;
	}
}

/* continued: text goes on from the previous call's, and so do the pairs */
static void
body_text(struct tok_ctx *ctx, const unsigned char *text, size_t len, bool continued)
{
	char buf[TOKEN_MAX];
	struct ms_word word;
	size_t pos = 0, n;
	uint64_t hash;

	if (!continued)
		ctx->window_fill = 0;
	while (ctx->body_words < MAX_BODY_WORDS && ms_words_next(text, len, &pos, &word)) {
		if (word.nchars < 2 && !word.cjk)
			continue;
		n = tok_word_text(&word, buf, sizeof(buf));
		hash = tok_add(ctx, "", buf, n);
		add_pairs(ctx, hash, buf);
		ctx->body_words++;
	}
	text_urls(ctx, text, len);
}

static void
attachment(struct tok_ctx *ctx, const struct ms_piece *piece)
{
	const unsigned char *dot;
	char ext[12];
	size_t i, n = 0;

	tok_add(ctx, "att:type:", piece->name, piece->name_len);
	if (piece->text_len == 0) {
		tok_add(ctx, "att:noname", "", 0);
		return;
	}
	for (dot = piece->text + piece->text_len; dot > piece->text && dot[-1] != '.'; dot--)
		;
	if (dot == piece->text)
		return;
	dot--;
	for (i = (size_t)(dot - piece->text) + 1; i < piece->text_len && n < sizeof(ext); i++) {
		unsigned char c = piece->text[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return;
		ext[n++] = (char)(c | (c >= 'A' && c <= 'Z' ? 0x20 : 0));
	}
	if (n > 0 && n < sizeof(ext))
		tok_add(ctx, "att:ext:", ext, n);
}

static void
meta(struct tok_ctx *ctx, const struct ms_piece *piece)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix),
	         "meta:%.*s:", (int)(piece->name_len < 32 ? piece->name_len : 32), piece->name);
	tok_add(ctx, prefix, piece->text, piece->text_len);
}

/* Which part of the classifier the tokens of a piece belong to. */
static uint64_t
piece_part_bit(enum ms_piece_type type)
{
	switch (type) {
	case MS_PIECE_HEADER:
	case MS_PIECE_ADDRESS:
		return MS_TOKEN_HEADER_BIT;
	case MS_PIECE_ATTACHMENT:
	case MS_PIECE_META:
		return MS_TOKEN_META_BIT;
	default:
		return 0;
	}
}

static void
piece_cb(const struct ms_piece *piece, void *context)
{
	struct tok_ctx *ctx = context;

	ctx->part_bit = piece_part_bit(piece->type);
	switch (piece->type) {
	case MS_PIECE_HEADER:
		if (piece->part == 0)
			tok_header(ctx, piece);
		break;
	case MS_PIECE_ADDRESS:
		if (piece->part == 0)
			tok_address(ctx, piece);
		break;
	case MS_PIECE_TEXT:
		body_text(ctx, piece->text, piece->text_len, piece->continued);
		break;
	case MS_PIECE_HTML_TEXT:
		body_text(ctx, piece->text, piece->text_len, false);
		break;
	case MS_PIECE_URL:
		tok_url(ctx, piece->text, piece->text_len);
		break;
	case MS_PIECE_ATTACHMENT:
		attachment(ctx, piece);
		break;
	case MS_PIECE_META:
		meta(ctx, piece);
		break;
	}
	ctx->part_bit = 0;
}

unsigned int
tok_log2_bucket(unsigned int n)
{
	unsigned int b = 0;

	while (n > 0) {
		n >>= 1;
		b++;
	}
	return b;
}

static void
finish(struct tok_ctx *ctx)
{
	char buf[32];
	int len;

	ctx->part_bit = MS_TOKEN_HEADER_BIT;
	tok_header_finish(ctx);
	ctx->part_bit = MS_TOKEN_META_BIT;
	len = snprintf(buf, sizeof(buf), "meta:words:%u", tok_log2_bucket(ctx->body_words));
	tok_add(ctx, "", buf, (size_t)len);
	len = snprintf(buf, sizeof(buf), "meta:urls:%u", tok_log2_bucket(ctx->urls));
	tok_add(ctx, "", buf, (size_t)len);
	ctx->part_bit = 0;
}

static int
cmp_hash(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
sort_bucket(uint64_t *v, size_t n)
{
	size_t i, j;
	uint64_t x;

	if (n > 16) {
		qsort(v, n, sizeof(*v), cmp_hash);
		return;
	}
	for (i = 1; i < n; i++) {
		x = v[i];
		for (j = i; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* Hashes are uniform: a counting pass on their top bits spreads them into
 * buckets of one or two, which insertion sort finishes. Several times
 * faster than qsort for a few thousand tokens. A bucket that is large
 * anyway (crafted tokens) goes to qsort: never quadratic. Up to
 * SORT_COPY_MAX tokens (all but the longest mail) the buckets are filled
 * by copying into a scratch array, which has no chain of dependent loads:
 * half the time (2,000 tokens: 8 us instead of 15-17 us on the bench
 * machine). Beyond, an in-place
 * permutation (American flag sort), so that a long message's tokens are
 * never held twice. */
#define SORT_BITS_MAX 12
#define SORT_COPY_MAX 4096

/* The n sorted hashes into h, each once; sorted may be h itself (what is
 * written never passes what is still to read). Returns how many. */
static size_t
dedup_sorted(uint64_t *h, const uint64_t *sorted, size_t n)
{
	size_t i, out = 1;

	h[0] = sorted[0];
	for (i = 1; i < n; i++) {
		if (sorted[i] != h[out - 1])
			h[out++] = sorted[i];
	}
	return out;
}

static void
sort_buckets(uint64_t *h, const uint32_t *end, size_t nbuckets)
{
	size_t i, start;

	for (i = 0, start = 0; i < nbuckets; start = end[i++])
		sort_bucket(h + start, end[i] - start);
}

static void
permute_buckets(uint64_t *h, const uint32_t *end, uint32_t *next, size_t nbuckets,
                unsigned int bits)
{
	size_t b, d;
	uint64_t v, t;

	for (b = 0; b < nbuckets; b++) {
		while (next[b] < end[b]) {
			v = h[next[b]];
			/* carry v to its bucket, taking along what it displaces */
			while ((d = v >> (64 - bits)) != b) {
				t = h[next[d]];
				h[next[d]++] = v;
				v = t;
			}
			h[next[b]++] = v;
		}
	}
}

static int
sort_unique(struct ms_tokens *tokens)
{
	size_t n = tokens->count, nbuckets, i, start;
	uint64_t *h = tokens->hashes, *copy;
	uint32_t *end, *next;
	unsigned int bits = 4;

	if (n < 2)
		return 0;
	while (bits < SORT_BITS_MAX && ((size_t)1 << bits) < n)
		bits++;
	nbuckets = (size_t)1 << bits;
	if ((end = calloc(2 * nbuckets, sizeof(*end))) == NULL)
		return -1;
	next = end + nbuckets;
	for (i = 0; i < n; i++)
		end[h[i] >> (64 - bits)]++;
	for (i = 0, start = 0; i < nbuckets; i++) {
		next[i] = (uint32_t)start;
		start += end[i];
		end[i] = (uint32_t)start;
	}
	if (n <= SORT_COPY_MAX && (copy = malloc(n * sizeof(*copy))) != NULL) {
		for (i = 0; i < n; i++)
			copy[next[h[i] >> (64 - bits)]++] = h[i];
		sort_buckets(copy, end, nbuckets);
		tokens->count = dedup_sorted(h, copy, n);
		free(copy);
	} else {
		permute_buckets(h, end, next, nbuckets, bits);
		sort_buckets(h, end, nbuckets);
		tokens->count = dedup_sorted(h, h, n);
	}
	free(end);
	return 0;
}

void
ms_tokens_init(struct ms_tokens *tokens)
{
	memset(tokens, 0, sizeof(*tokens));
}

void
ms_tokens_free(struct ms_tokens *tokens)
{
	free(tokens->hashes);
	memset(tokens, 0, sizeof(*tokens));
}

int
ms_tokenize_message_debug(const unsigned char *msg, size_t size, struct ms_tokens *tokens,
                          ms_token_text_cb *cb, void *context)
{
	struct ms_message_limits limits;
	struct tok_ctx ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.tokens = tokens;
	ctx.text_cb = cb;
	ctx.text_context = context;
	tokens->count = 0;
	ms_message_limits_default(&limits);
	ms_message_parse(msg, size, &limits, piece_cb, &ctx);
	finish(&ctx);
	if (ctx.failed || sort_unique(tokens) < 0) {
		tokens->count = 0;
		return -1;
	}
	return 0;
}

int
ms_tokenize_message(const unsigned char *msg, size_t size, struct ms_tokens *tokens)
{
	return ms_tokenize_message_debug(msg, size, tokens, NULL, NULL);
}
