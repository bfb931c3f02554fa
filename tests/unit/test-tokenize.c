#include "ms-hash.h"
#include "ms-tokenize.h"
#include "ms-words.h"
#include "ms-test.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Token texts as the debug variant reports them, deduplicated. */
struct texts {
	char **items;
	size_t count;
	bool hashes_ok; /* every hash matched its text */
	bool *header;   /* items[i] was made with the header bit */
	bool *meta;     /* ... with the meta bit */
};

static void
text_cb(const char *text, size_t len, uint64_t hash, void *context)
{
	struct texts *t = context;
	char *copy = strndup(text, len);
	size_t i;

	ck_assert_ptr_nonnull(copy);
	/* the low bits say pair, header and meta; the rest is the text's hash */
	if (strncmp(copy, "osb", 3) != 0 &&
	    ((ms_hash64(text, len, 0) &
	      ~(MS_TOKEN_PAIR_BIT | MS_TOKEN_HEADER_BIT | MS_TOKEN_META_BIT)) !=
	             (hash & ~(MS_TOKEN_HEADER_BIT | MS_TOKEN_META_BIT)) ||
	     ms_token_is_pair(hash)))
		t->hashes_ok = false;
	if (strncmp(copy, "osb", 3) == 0 && !ms_token_is_pair(hash))
		t->hashes_ok = false;
	for (i = 0; i < t->count; i++) {
		if (strcmp(t->items[i], copy) == 0) {
			free(copy);
			return;
		}
	}
	t->items = realloc(t->items, (t->count + 1) * sizeof(*t->items));
	t->header = realloc(t->header, (t->count + 1) * sizeof(*t->header));
	t->meta = realloc(t->meta, (t->count + 1) * sizeof(*t->meta));
	ck_assert_ptr_nonnull(t->items);
	ck_assert_ptr_nonnull(t->header);
	ck_assert_ptr_nonnull(t->meta);
	t->header[t->count] = ms_token_is_header(hash);
	t->meta[t->count] = ms_token_is_meta(hash);
	t->items[t->count++] = copy;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct text_bit {
	char *text;
	bool header, meta;
};

static int
cmp_text_bit(const void *a, const void *b)
{
	return strcmp(((const struct text_bit *)a)->text, ((const struct text_bit *)b)->text);
}

/* the texts sorted, each keeping its header and meta bits */
static struct texts
tokenize(const char *msg, size_t size, struct ms_tokens *tokens)
{
	struct texts t = {NULL, 0, true, NULL, NULL};
	struct text_bit *v;
	size_t i;

	ck_assert_int_eq(
	        ms_tokenize_message_debug((const unsigned char *)msg, size, tokens, text_cb, &t),
	        0);
	v = calloc(t.count + 1, sizeof(*v));
	ck_assert_ptr_nonnull(v);
	for (i = 0; i < t.count; i++)
		v[i] = (struct text_bit){t.items[i], t.header[i], t.meta[i]};
	qsort(v, t.count, sizeof(*v), cmp_text_bit);
	for (i = 0; i < t.count; i++)
		t.items[i] = v[i].text, t.header[i] = v[i].header, t.meta[i] = v[i].meta;
	free(v);
	return t;
}

static bool
has(const struct texts *t, const char *token)
{
	return bsearch(&token, t->items, t->count, sizeof(*t->items), cmp_str) != NULL;
}

static void
texts_free(struct texts *t)
{
	size_t i;

	for (i = 0; i < t->count; i++)
		free(t->items[i]);
	free(t->items);
	free(t->header);
	free(t->meta);
}

#define expect_token(t, tok)    ck_assert_msg(has(&(t), tok), "token \"%s\" missing", tok)
#define expect_no_token(t, tok) ck_assert_msg(!has(&(t), tok), "token \"%s\" unexpected", tok)

/* The published XXH64 test vectors: the hash must never change, since the
 * store keeps tokens by hash. */
START_TEST(test_hash_vectors)
{
	static const char nobody[] = "Nobody inspects the spammish repetition";
	/* a pair's hash is XXH64 of its two hashes, little-endian */
	static const unsigned char sixteen[16] = {0, 1, 2,  3,  4,  5,  6,  7,
	                                          8, 9, 10, 11, 12, 13, 14, 15};
	static const unsigned char ones[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                       1,    0,    0,    0,    0,    0,    0,    0x80};

	ck_assert_uint_eq(ms_hash64("", 0, 0), 0xEF46DB3751D8E999ULL);
	ck_assert_uint_eq(ms_hash64("", 0, 1), 0xD5AFBA1336A3BE4BULL);
	ck_assert_uint_eq(ms_hash64("a", 1, 0), 0xD24EC4F1A98C6E5BULL);
	ck_assert_uint_eq(ms_hash64("abc", 3, 0), 0x44BC2CF5AD770999ULL);
	ck_assert_uint_eq(ms_hash64("asdf", 4, 0), 0x415872F599CEA71EULL);
	ck_assert_uint_eq(ms_hash64("Call me Ishmael.", 16, 0), 0x6D04390FC9D61A90ULL);
	ck_assert_uint_eq(ms_hash64(nobody, strlen(nobody), 0), 0xFBCEA83C8A378BF1ULL);
	ck_assert_uint_eq(ms_hash_pair(0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL, 3),
	                  ms_hash64(sixteen, sizeof(sixteen), 3));
	ck_assert_uint_eq(ms_hash_pair(~0ULL, 0x8000000000000001ULL, 1),
	                  ms_hash64(ones, sizeof(ones), 1));
	ck_assert_uint_ne(ms_hash_pair(1, 2, 1), ms_hash_pair(2, 1, 1));
	ck_assert_uint_ne(ms_hash_pair(1, 2, 1), ms_hash_pair(1, 2, 2));
}
END_TEST

static void
expect_words(const char *text, const char *const *expected, size_t n)
{
	struct ms_word word;
	size_t pos = 0, i = 0;

	while (ms_words_next((const unsigned char *)text, strlen(text), &pos, &word)) {
		ck_assert_msg(i < n, "extra word \"%.*s\"", (int)word.len, word.text);
		ck_assert_msg(word.len == strlen(expected[i]) &&
		                      memcmp(word.text, expected[i], word.len) == 0,
		              "word %zu: \"%.*s\", expected \"%s\"", i, (int)word.len, word.text,
		              expected[i]);
		i++;
	}
	ck_assert_uint_eq(i, n);
}

START_TEST(test_words)
{
	static const char *const plain[] = {"don't", "e-mail", "me", "at", "3.5", "$500", "end"};
	static const char *const tricks[] = {"viagra", "free", "\xc3\xa4\xc3\xb6\xc3\xbc",
	                                     "\xd0\xbf\xd1\x80\xd0\xb8"};
	static const char *const cjk[] = {"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x9c\xac\xe8\xaa\x9e",
	                                  "\xe8\xaa\x9e", "ok"};
	static const char *const thai[] = {"\xe0\xb8\xa3\xe0\xb8\xb2",
	                                   "\xe0\xb8\xb2\xe0\xb8\x84",
	                                   "\xe0\xb8\x84\xe0\xb8\xb2",
	                                   "\xe0\xb8\xb2\xe0\xb8\x96",
	                                   "\xe0\xb8\x96\xe0\xb8\xb9",
	                                   "\xe0\xb8\xb9\xe0\xb8\x81",
	                                   "\xe0\xb8\x81",
	                                   "ok"};

	expect_words("Don't e-mail me... at 3.5%, $500 -- END.", plain,
	             sizeof(plain) / sizeof(plain[0]));
	/* zero-width space and soft hyphen inside, fullwidth letters, Latin-1
	 * and Cyrillic capitals */
	expect_words("V\xe2\x80\x8bia\xc2\xadGRA \xef\xbc\xa6\xef\xbc\xb2\xef\xbd\x85\xef\xbd\x85 "
	             "\xc3\x84\xc3\x96\xc3\x9c \xd0\x9f\xd0\xa0\xd0\x98",
	             tricks, sizeof(tricks) / sizeof(tricks[0]));
	/* ideographs pair with their neighbour */
	expect_words("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e ok", cjk, sizeof(cjk) / sizeof(cjk[0]));
	/* so do the characters of Thai, which has no spaces between words */
	expect_words("\xe0\xb8\xa3\xe0\xb8\xb2\xe0\xb8\x84\xe0\xb8\xb2\xe0\xb8\x96\xe0\xb8\xb9"
	             "\xe0\xb8\x81 ok",
	             thai, sizeof(thai) / sizeof(thai[0]));
	/* invalid UTF-8 separates words */
	static const char *const invalid[] = {"ab", "cd"};
	expect_words("ab\xff\xfe"
	             "cd",
	             invalid, 2);
}
END_TEST

START_TEST(test_long_word)
{
	struct ms_word word;
	char text[200];
	size_t pos = 0;

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	ck_assert(ms_words_next((const unsigned char *)text, strlen(text), &pos, &word));
	ck_assert(word.truncated);
	ck_assert_uint_eq(word.nchars, 199);
	ck_assert_uint_le(word.len, MS_WORD_MAX);
	ck_assert(!ms_words_next((const unsigned char *)text, strlen(text), &pos, &word));
}
END_TEST

/* Every token of a small message, exactly. */
START_TEST(test_exact_tokens)
{
	static const char msg[] = "From: Bob <bob@mail.example.com>\n"
	                          "To: alice@example.org\n"
	                          "Subject: Cheap meds\n"
	                          "X-Spam-Status: Yes, forged\n"
	                          "\n"
	                          "Buy 100 pills\n";
	static const char *const expected[] = {
	        "buy",
	        "from:addr:bob@mail.example.com",
	        "from:dom:example.com",
	        "from:dom:mail.example.com",
	        "from:name:bob",
	        "hdr:from",
	        "hdr:none:date",
	        "hdr:none:message-id",
	        "hdr:subject",
	        "hdr:to",
	        "meta:charset:none",
	        "meta:layout:text/plain",
	        "meta:type:text/plain",
	        "meta:urls:0",
	        "meta:words:2",
	        "num:3",
	        "osb1:buy num:3",
	        "osb1:num:3 pills",
	        "osb1:subj:cheap subj:meds",
	        "pills",
	        "subj:cheap",
	        "subj:meds",
	        "to:addr:alice@example.org",
	        "to:count:1",
	        "to:dom:example.org",
	};
	size_t n = sizeof(expected) / sizeof(expected[0]), i;
	struct ms_tokens tokens;
	struct texts t;

	ms_tokens_init(&tokens);
	t = tokenize(msg, sizeof(msg) - 1, &tokens);
	for (i = 0; i < t.count && i < n; i++)
		ck_assert_str_eq(t.items[i], expected[i]);
	ck_assert_uint_eq(t.count, n);
	/* each distinct text is one distinct hash */
	ck_assert_uint_eq(tokens.count, n);
	ck_assert(t.hashes_ok);
	/* the header bit: set on the tokens of From, To, Subject (its pair
	 * too) and the header's fields, clear on the body's words and the
	 * form (meta:); the meta bit on the form's alone */
	for (i = 0; i < t.count; i++) {
		bool header = strncmp(t.items[i], "from:", 5) == 0 ||
		              strncmp(t.items[i], "to:", 3) == 0 ||
		              strncmp(t.items[i], "hdr:", 4) == 0 ||
		              strncmp(t.items[i], "subj:", 5) == 0 ||
		              strncmp(t.items[i], "osb1:subj:", 10) == 0;
		bool meta = strncmp(t.items[i], "meta:", 5) == 0;

		ck_assert_msg(t.header[i] == header, "%s: header bit %d", t.items[i], t.header[i]);
		ck_assert_msg(t.meta[i] == meta, "%s: meta bit %d", t.items[i], t.meta[i]);
	}
	texts_free(&t);
	ms_tokens_free(&tokens);
}
END_TEST

/* the meta bit: on every metatoken and attachment token of the body, not on
 * the words, URL hosts or the header's tokens */
START_TEST(test_meta_bit)
{
	static const char msg[] =
	        "From: bob@example.com\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
	        "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
	        "--b\r\nContent-Type: text/plain\r\n\r\n"
	        "see http://www.example.net/x the report\r\n"
	        "--b\r\nContent-Type: application/pdf\r\n"
	        "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
	        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
	struct ms_tokens tokens;
	struct texts t;
	size_t i, metas = 0;

	ms_tokens_init(&tokens);
	t = tokenize(msg, sizeof(msg) - 1, &tokens);
	expect_token(t, "att:ext:pdf");
	expect_token(t, "url:example.net");
	expect_token(t, "report");
	ck_assert(t.hashes_ok);
	for (i = 0; i < t.count; i++) {
		bool meta =
		        strncmp(t.items[i], "meta:", 5) == 0 || strncmp(t.items[i], "att:", 4) == 0;

		ck_assert_msg(t.meta[i] == meta, "%s: meta bit %d", t.items[i], t.meta[i]);
		ck_assert_msg(!(t.meta[i] && t.header[i]), "%s: both bits", t.items[i]);
		metas += meta;
	}
	ck_assert_uint_gt(metas, 3);
	texts_free(&t);
	ms_tokens_free(&tokens);
}
END_TEST

START_TEST(test_sorted_unique_stable)
{
	static const char msg[] = "Subject: again again again\n\nword word word other word\n";
	struct ms_tokens a, b;
	size_t i;

	ms_tokens_init(&a);
	ms_tokens_init(&b);
	ck_assert_int_eq(ms_tokenize_message((const unsigned char *)msg, sizeof(msg) - 1, &a), 0);
	ck_assert_int_eq(ms_tokenize_message((const unsigned char *)msg, sizeof(msg) - 1, &b), 0);
	ck_assert_uint_gt(a.count, 5);
	for (i = 1; i < a.count; i++)
		ck_assert_uint_lt(a.hashes[i - 1], a.hashes[i]);
	ck_assert_uint_eq(a.count, b.count);
	ck_assert_int_eq(memcmp(a.hashes, b.hashes, a.count * sizeof(*a.hashes)), 0);
	/* a body word's hash is the hash of its text, the pair, header and
	 * meta bits cleared */
	for (i = 0; i < a.count &&
	            a.hashes[i] != (ms_hash64("word", 4, 0) &
	                            ~(MS_TOKEN_PAIR_BIT | MS_TOKEN_HEADER_BIT | MS_TOKEN_META_BIT));
	     i++)
		;
	ck_assert_uint_lt(i, a.count);
	ms_tokens_free(&a);
	ms_tokens_free(&b);
}
END_TEST

/* Every hash the tokenizer made, duplicates included. */
struct all_hashes {
	uint64_t *items;
	size_t count, capacity;
};

static void
hash_cb(const char *text, size_t len, uint64_t hash, void *context)
{
	struct all_hashes *h = context;

	if (h->count == h->capacity) {
		h->capacity = h->capacity == 0 ? 4096 : h->capacity * 2;
		h->items = realloc(h->items, h->capacity * sizeof(*h->items));
		ck_assert_ptr_nonnull(h->items);
	}
	h->items[h->count++] = hash;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A long text with many repeated words (tens of thousands of tokens, a
 * third distinct): the array is deduplicated as it fills, and the result
 * is exactly the sorted set of every token made. */
START_TEST(test_many_tokens_exact)
{
	struct all_hashes all = {NULL, 0, 0};
	struct ms_tokens tokens;
	size_t size = 400 * 1024, pos, i, out;
	char *msg = malloc(size + 64);

	ck_assert_ptr_nonnull(msg);
	pos = (size_t)sprintf(msg, "Subject: many\n\n");
	for (i = 0; pos + 16 < size; i++)
		pos += (size_t)sprintf(msg + pos, "w%zx%s", (i * 7919) % 9000,
		                       i % 12 == 11 ? "\n" : " ");
	ms_tokens_init(&tokens);
	ck_assert_int_eq(
	        ms_tokenize_message_debug((const unsigned char *)msg, pos, &tokens, hash_cb, &all),
	        0);
	ck_assert_uint_gt(all.count, 30000);
	qsort(all.items, all.count, sizeof(*all.items), cmp_u64);
	for (i = 1, out = 1; i < all.count; i++) {
		if (all.items[i] != all.items[out - 1])
			all.items[out++] = all.items[i];
	}
	ck_assert_uint_gt(out, 10000);
	ck_assert_uint_lt(out, all.count / 2);
	ck_assert_uint_eq(tokens.count, out);
	ck_assert_int_eq(memcmp(tokens.hashes, all.items, out * sizeof(*all.items)), 0);
	/* it held about the distinct tokens, not all of them */
	ck_assert_uint_lt(tokens.capacity, all.count);
	ms_tokens_free(&tokens);
	free(all.items);
	free(msg);
}
END_TEST

/* Word pairs go on across the pieces a long text part comes in: its last
 * word here (no line end after it) is a piece of its own. */
START_TEST(test_pairs_across_pieces)
{
	static const char tail[] = "alpha beta\ngamma delta";
	size_t size = 40 * 1024, pos, i;
	char *msg = malloc(size + sizeof(tail) + 64);
	struct ms_tokens tokens;
	struct texts t;

	ck_assert_ptr_nonnull(msg);
	pos = (size_t)sprintf(msg, "Subject: s\n\n");
	for (i = 0; pos < size; i++)
		pos += (size_t)sprintf(msg + pos, "filler%zu words\n", i % 100);
	pos += (size_t)sprintf(msg + pos, "%s", tail);
	ms_tokens_init(&tokens);
	t = tokenize(msg, pos, &tokens);
	expect_token(t, "osb1:alpha beta");
	expect_token(t, "osb1:beta gamma");
	expect_token(t, "osb1:gamma delta");
	texts_free(&t);
	ms_tokens_free(&tokens);
	free(msg);
}
END_TEST

START_TEST(test_crlf_same_as_lf)
{
	static const char lf[] = "Subject: s\nFrom: a@b.example\n\nline one\nline two\n";
	static const char crlf[] =
	        "Subject: s\r\nFrom: a@b.example\r\n\r\nline one\r\nline two\r\n";
	struct ms_tokens a, b;

	ms_tokens_init(&a);
	ms_tokens_init(&b);
	ck_assert_int_eq(ms_tokenize_message((const unsigned char *)lf, sizeof(lf) - 1, &a), 0);
	ck_assert_int_eq(ms_tokenize_message((const unsigned char *)crlf, sizeof(crlf) - 1, &b), 0);
	ck_assert_uint_eq(a.count, b.count);
	ck_assert_int_eq(memcmp(a.hashes, b.hashes, a.count * sizeof(*a.hashes)), 0);
	ms_tokens_free(&a);
	ms_tokens_free(&b);
}
END_TEST

START_TEST(test_urls_and_headers)
{
	static const char msg[] = "Received: from mx.Spammer.example.net (unknown [192.0.2.17])\n"
	                          "\tby mail.example.org with ESMTP id 123\n"
	                          "Message-ID: <abc.123@Bulk.Example.biz>\n"
	                          "Reply-To: other@elsewhere.example\n"
	                          "From: a@example.com\n"
	                          "X-Mailer: SuperMailer 5.0\n"
	                          "Date: Mon, 1 Jul 2002 10:00:00 -0700\n"
	                          "X-Priority: 1 (Highest)\n"
	                          "Content-Type: text/html\n"
	                          "\n"
	                          "<p>visit http://www.Example.co.uk/path or www.foo.com now</p>"
	                          "<a href=\"https://user:pw@203.0.113.9:8080/x\">x</a>"
	                          "<a href=\"mailto:sales@shop.example?subject=hi\">mail</a>\n";
	struct ms_tokens tokens;
	struct texts t;

	ms_tokens_init(&tokens);
	t = tokenize(msg, sizeof(msg) - 1, &tokens);
	expect_token(t, "rcvd:mx.spammer.example.net");
	expect_token(t, "rcvd:example.net");
	expect_token(t, "rcvd:ip:192.0.2.17");
	expect_token(t, "rcvd:net:192.0.2");
	expect_token(t, "rcvd:with:esmtp");
	expect_token(t, "mid:dom:bulk.example.biz");
	expect_token(t, "rt:dom:elsewhere.example");
	expect_token(t, "rt:differs");
	expect_token(t, "xm:supermailer");
	expect_token(t, "xm:full:supermailer 5.0");
	expect_token(t, "date:tz:-0700");
	expect_token(t, "x-priority:1");
	expect_token(t, "url:www.example.co.uk");
	expect_token(t, "url:example.co.uk");
	expect_token(t, "url:co.uk");
	expect_token(t, "urltld:uk");
	expect_token(t, "url:www.foo.com");
	expect_token(t, "url:foo.com");
	expect_token(t, "url:ip");
	expect_token(t, "url:203.0.113.9");
	expect_token(t, "mailto:shop.example");
	expect_token(t, "meta:form:html-only");
	expect_token(t, "visit");
	expect_no_token(t, "rcvd:123");
	expect_no_token(t, "url:uk");
	texts_free(&t);
	ms_tokens_free(&tokens);
}
END_TEST

/* Sender authentication fields: every auth: and dkim: token, exactly. A
 * verdict is tagged with whoever wrote it; comments, versions, reasons and
 * properties are not evidence; malformed fields give what they can. */
START_TEST(test_auth_fields)
{
	static const char msg[] =
	        "Authentication-Results: MX.Example.org (Debian);\n"
	        "\tdkim=pass (2048-bit key) header.d=news.example.com header.b=abc;\n"
	        "\tspf = softfail (domain transitions) smtp.mailfrom=x@y.example;\n"
	        "\tdmarc/1=fail reason=\"policy\"; =pass; arc\n"
	        "Authentication-Results: forged.example; none\n"
	        "Received-SPF: Pass (mailfrom) identity=mailfrom\n"
	        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed;\n"
	        "\t d = Mail.News.Example.com; s=sel; b=AAAA\n"
	        "DKIM-Signature: v=1; d=localhost; s=x\n"
	        "Subject: s\n"
	        "\n"
	        "body\n";
	static const char *const expected[] = {
	        "auth:id:forged.example",
	        "auth:id:mx.example.org",
	        "auth:mx.example.org:dkim:pass",
	        "auth:mx.example.org:dmarc:fail",
	        "auth:mx.example.org:spf:softfail",
	        "auth:spf:pass",
	        "dkim:dom:example.com",
	        "dkim:dom:mail.news.example.com",
	        "dkim:dom:news.example.com",
	};
	size_t n = sizeof(expected) / sizeof(expected[0]), i, found = 0;
	struct ms_tokens tokens;
	struct texts t;

	ms_tokens_init(&tokens);
	t = tokenize(msg, sizeof(msg) - 1, &tokens);
	for (i = 0; i < t.count; i++) {
		if (strncmp(t.items[i], "auth:", 5) != 0 && strncmp(t.items[i], "dkim:", 5) != 0)
			continue;
		ck_assert_msg(found < n, "unexpected token \"%s\"", t.items[i]);
		ck_assert_str_eq(t.items[i], expected[found]);
		found++;
	}
	ck_assert_uint_eq(found, n);
	expect_token(t, "hdr:authentication-results");
	expect_token(t, "hdr:dkim-signature");
	texts_free(&t);
	ms_tokens_free(&tokens);
}
END_TEST

/* X-Spam-* fields say what some other filter thought, and a mail reader's
 * mailbox state (Status, X-Status, X-Keywords, X-UID, X-IMAP...) is never on
 * a message at delivery: neither is evidence. */
START_TEST(test_xspam_ignored)
{
	static const char with[] = "X-Spam-Status: Yes, hits=20\nX-Spam-Flag: YES\n"
	                           "Status: RO\nX-Status: A\nX-Keywords: $Junk\nX-UID: 7\n"
	                           "X-IMAP: 1 2\nX-IMAPbase: 1 2\n"
	                           "Subject: s\n\nbody\n";
	static const char without[] = "Subject: s\n\nbody\n";
	struct ms_tokens a, b;

	ms_tokens_init(&a);
	ms_tokens_init(&b);
	ck_assert_int_eq(ms_tokenize_message((const unsigned char *)with, sizeof(with) - 1, &a), 0);
	ck_assert_int_eq(
	        ms_tokenize_message((const unsigned char *)without, sizeof(without) - 1, &b), 0);
	ck_assert_uint_eq(a.count, b.count);
	ck_assert_int_eq(memcmp(a.hashes, b.hashes, a.count * sizeof(*a.hashes)), 0);
	ms_tokens_free(&a);
	ms_tokens_free(&b);
}
END_TEST

START_TEST(test_hostile_input)
{
	static const char nuls[] = "Sub\0ject: \0\0\n\n\0\0body\0text\0\n";
	struct ms_tokens tokens;
	size_t size = 4 * 1024 * 1024, i;
	unsigned char *big = malloc(size);

	ck_assert_ptr_nonnull(big);
	ms_tokens_init(&tokens);
	ck_assert_int_eq(ms_tokenize_message((const unsigned char *)"", 0, &tokens), 0);
	ck_assert_uint_gt(tokens.count, 0);
	ck_assert_int_eq(
	        ms_tokenize_message((const unsigned char *)nuls, sizeof(nuls) - 1, &tokens), 0);
	ck_assert_uint_gt(tokens.count, 0);
	/* a 4 MB line of 8-bit junk, then the same as words */
	for (i = 0; i < size; i++)
		big[i] = (unsigned char)(0x80 + (i * 7) % 128);
	ck_assert_int_eq(ms_tokenize_message(big, size, &tokens), 0);
	for (i = 0; i < size; i++)
		big[i] = i % 7 == 0 ? ' ' : (unsigned char)('a' + (i * 13) % 26);
	ck_assert_int_eq(ms_tokenize_message(big, size, &tokens), 0);
	/* bounded: words read are capped, so tokens are too */
	ck_assert_uint_lt(tokens.count, 200000);
	ms_tokens_free(&tokens);
	free(big);
}
END_TEST

/* No token holds U+FFFD: no byte of the message was replaced. */
static bool
has_replacement(const struct texts *t)
{
	size_t i;

	for (i = 0; i < t->count; i++) {
		if (strstr(t->items[i], "\xef\xbf\xbd") != NULL)
			return true;
	}
	return false;
}

static struct texts
tokenize_str(const char *msg, struct ms_tokens *tokens)
{
	ms_tokens_init(tokens);
	return tokenize(msg, strlen(msg), tokens);
}

/* A raw GB2312 Subject (no RFC 2047) in a message whose body declares
 * gb2312: the Subject is read in the body's charset, not replaced. The
 * whole token list. */
START_TEST(test_undeclared_subject_exact)
{
	/* Subject 代开发票, body 公司发票 */
	static const char msg[] = "From: a@b.example\n"
	                          "Subject: \xb4\xfa\xbf\xaa\xb7\xa2\xc6\xb1\n"
	                          "Content-Type: text/plain; charset=gb2312\n"
	                          "\n"
	                          "\xb9\xab\xcb\xbe\xb7\xa2\xc6\xb1\n";
	static const char *const expected[] = {
	        "from:addr:a@b.example", "from:dom:b.example", "from:name:none", "hdr:content-type",
	        "hdr:from", "hdr:none:date", "hdr:none:message-id", "hdr:subject",
	        "meta:charset:gb2312", "meta:form:8bit-header", "meta:layout:text/plain",
	        "meta:type:text/plain", "meta:urls:0", "meta:words:3",
	        /* osb1:subj:代开 subj:开发 */
	        "osb1:subj:\xe4\xbb\xa3\xe5\xbc\x80 subj:\xe5\xbc\x80\xe5\x8f\x91",
	        /* osb1:subj:发票 subj:票 */
	        "osb1:subj:\xe5\x8f\x91\xe7\xa5\xa8 subj:\xe7\xa5\xa8",
	        /* osb1:subj:开发 subj:发票 */
	        "osb1:subj:\xe5\xbc\x80\xe5\x8f\x91 subj:\xe5\x8f\x91\xe7\xa5\xa8",
	        /* osb1:公司 司发, osb1:发票 票, osb1:司发 发票 */
	        "osb1:\xe5\x85\xac\xe5\x8f\xb8 \xe5\x8f\xb8\xe5\x8f\x91",
	        "osb1:\xe5\x8f\x91\xe7\xa5\xa8 \xe7\xa5\xa8",
	        "osb1:\xe5\x8f\xb8\xe5\x8f\x91 \xe5\x8f\x91\xe7\xa5\xa8", "subj:shape:8bit",
	        "subj:\xe4\xbb\xa3\xe5\xbc\x80",          /* subj:代开 */
	        "subj:\xe5\x8f\x91\xe7\xa5\xa8",          /* subj:发票 */
	        "subj:\xe5\xbc\x80\xe5\x8f\x91",          /* subj:开发 */
	        "subj:\xe7\xa5\xa8",                      /* subj:票 */
	        "to:count:0", "\xe5\x85\xac\xe5\x8f\xb8", /* 公司 */
	        "\xe5\x8f\x91\xe7\xa5\xa8",               /* 发票 */
	        "\xe5\x8f\xb8\xe5\x8f\x91",               /* 司发 */
	        "\xe7\xa5\xa8",                           /* 票 */
	};
	size_t n = sizeof(expected) / sizeof(expected[0]), i;
	struct ms_tokens tokens;
	struct texts t;

	t = tokenize_str(msg, &tokens);
	for (i = 0; i < t.count && i < n; i++)
		ck_assert_str_eq(t.items[i], expected[i]);
	ck_assert_uint_eq(t.count, n);
	texts_free(&t);
	ms_tokens_free(&tokens);
}
END_TEST

/* Text that declares no charset and is not UTF-8 is read in the first
 * charset a text part of the message declares, else in windows-1252: the
 * tokens each message must have ("!" first: must not have), and none holds
 * U+FFFD. */
START_TEST(test_undeclared_8bit)
{
	static const struct {
		const char *msg;
		const char *tokens[7];
	} cases[] = {
	        /* Subject and plain part GB2312, undeclared; the HTML
	         * alternative declares gb2312 */
	        {"Subject: \xb4\xfa\xbf\xaa\xb7\xa2\xc6\xb1\n"
	         "MIME-Version: 1.0\n"
	         "Content-Type: multipart/alternative; boundary=b\n\n"
	         "--b\nContent-Type: text/plain\n\n"
	         "\xb1\xbe\xb9\xab\xcb\xbe\xd3\xd0\xb2\xbf\xb7\xd6\n"
	         "--b\nContent-Type: text/html; charset=gb2312\n\n"
	         "<p>\xb7\xa2\xc6\xb1</p>\n--b--\n",
	         {"subj:\xe4\xbb\xa3\xe5\xbc\x80", /* subj:代开 */
	          "subj:\xe5\x8f\x91\xe7\xa5\xa8", /* subj:发票 */
	          "\xe5\x85\xac\xe5\x8f\xb8",      /* 公司 */
	          "\xe9\x83\xa8\xe5\x88\x86",      /* 部分 */
	          "\xe5\x8f\x91\xe7\xa5\xa8",      /* 发票 */
	          "meta:charset:none"}},
	        /* KOI8-R: Subject "Привет мир" and From's display name "Иван"
	         * raw, the body declares koi8-r: "Скидки для вас" */
	        {"From: \xe9\xd7\xc1\xce <ivan@example.ru>\n"
	         "Subject: \xf0\xd2\xc9\xd7\xc5\xd4 \xcd\xc9\xd2\n"
	         "Content-Type: text/plain; charset=koi8-r\n\n"
	         "\xf3\xcb\xc9\xc4\xcb\xc9 \xc4\xcc\xd1 \xd7\xc1\xd3\n",
	         {"subj:\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", /* subj:привет */
	          "subj:\xd0\xbc\xd0\xb8\xd1\x80",                         /* subj:мир */
	          "osb1:subj:\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
	          "subj:\xd0\xbc\xd0\xb8\xd1\x80",
	          "from:name:\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd",         /* иван */
	          "\xd1\x81\xd0\xba\xd0\xb8\xd0\xb4\xd0\xba\xd0\xb8"}}, /* скидки */
	        /* Outlook's Korean label, which iconv knows as cp949; the raw
	         * Subject "광고 안내" is read in it too. Body: "안녕하세요 할인 행사" */
	        {"Subject: \xb1\xa4\xb0\xed \xbe\xc8\xb3\xbb\n"
	         "Content-Type: text/plain; charset=\"ks_c_5601-1987\"\n\n"
	         "\xbe\xc8\xb3\xe7\xc7\xcf\xbc\xbc\xbf\xe4 \xc7\xd2\xc0\xce \xc7\xe0\xbb\xe7\n",
	         {"subj:\xea\xb4\x91\xea\xb3\xa0",                                /* subj:광고 */
	          "subj:\xec\x95\x88\xeb\x82\xb4",                                /* subj:안내 */
	          "\xec\x95\x88\xeb\x85\x95\xed\x95\x98\xec\x84\xb8\xec\x9a\x94", /* 안녕하세요 */
	          "\xed\x95\xa0\xec\x9d\xb8",                                     /* 할인 */
	          "\xed\x96\x89\xec\x82\xac",                                     /* 행사 */
	          "meta:charset:ks_c_5601-1987"}},
	        /* Latin-1, nothing declared: windows-1252 */
	        {"Subject: Qualit\xe9 garantie\n\ncaf\xe9 au lait, tr\xe8s bon\n",
	         {"subj:qualit\xc3\xa9", "caf\xc3\xa9", "tr\xc3\xa8s", "osb1:caf\xc3\xa9 au",
	          "!caf"}},
	        /* us-ascii declared is no declaration; quoted-printable */
	        {"Content-Type: text/plain; charset=us-ascii\n"
	         "Content-Transfer-Encoding: quoted-printable\n\n"
	         "caf=E9 au lait, tr=\n=E8s bon\n",
	         {"caf\xc3\xa9", "tr\xc3\xa8s", "meta:charset:us-ascii"}},
	        /* RFC 2047 words beside raw bytes decode as before */
	        {"Subject: =?utf-8?B?R3LDvMOfZQ==?= caf\xe9\n\nx\n",
	         {"subj:gr\xc3\xbc\xc3\x9f"
	          "e",
	          "subj:caf\xc3\xa9"}},
	};
	struct ms_tokens tokens;
	struct texts t;
	size_t i, j;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = tokenize_str(cases[i].msg, &tokens);
		for (j = 0; j < 7 && cases[i].tokens[j] != NULL; j++) {
			const char *tok = cases[i].tokens[j];

			if (tok[0] == '!')
				ck_assert_msg(!has(&t, tok + 1), "%zu: token \"%s\" unexpected", i,
				              tok + 1);
			else
				ck_assert_msg(has(&t, tok), "%zu: token \"%s\" missing", i, tok);
		}
		ck_assert_msg(!has_replacement(&t), "%zu: U+FFFD", i);
		texts_free(&t);
		ms_tokens_free(&tokens);
	}
}
END_TEST

/* Undeclared text that is valid UTF-8 is read as UTF-8, as before, even
 * when another part is converted. */
START_TEST(test_undeclared_utf8)
{
	struct ms_tokens tokens;
	struct texts t;

	t = tokenize_str("Subject: caf\xc3\xa9\n"
	                 "Content-Type: multipart/mixed; boundary=b\n\n"
	                 "--b\n\ncaf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87\n"
	                 "--b\nContent-Type: text/plain; charset=us-ascii\n\nna\xefve\n--b--\n",
	                 &tokens);
	expect_token(t, "subj:caf\xc3\xa9");
	expect_token(t, "caf\xc3\xa9");
	expect_token(t, "\xe4\xb8\xad\xe6\x96\x87"); /* 中文 */
	expect_token(t, "na\xc3\xafve");             /* the second part, windows-1252 */
	expect_no_token(t, "caf\xc3\x83\xc2\xa9");   /* café read as windows-1252 */
	ck_assert(!has_replacement(&t));
	texts_free(&t);
	ms_tokens_free(&tokens);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("tokenize");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hash_vectors);
	tcase_add_test(tc, test_words);
	tcase_add_test(tc, test_long_word);
	tcase_add_test(tc, test_exact_tokens);
	tcase_add_test(tc, test_meta_bit);
	tcase_add_test(tc, test_sorted_unique_stable);
	tcase_add_test(tc, test_many_tokens_exact);
	tcase_add_test(tc, test_pairs_across_pieces);
	tcase_add_test(tc, test_crlf_same_as_lf);
	tcase_add_test(tc, test_urls_and_headers);
	tcase_add_test(tc, test_auth_fields);
	tcase_add_test(tc, test_xspam_ignored);
	tcase_add_test(tc, test_hostile_input);
	tcase_add_test(tc, test_undeclared_subject_exact);
	tcase_add_test(tc, test_undeclared_8bit);
	tcase_add_test(tc, test_undeclared_utf8);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
