/* Header tokens, tagged by field so that "free" in a Subject and in a body
 * count apart:
 *   hdr:NAME               the field is present (any field but X-Spam-*)
 *   hdr:none:NAME          Subject, From, Date or Message-ID is missing
 *   subj:WORD, osb1:subj:A subj:B, subj:shape:caps|excl|dollar|8bit|re|fwd|empty
 *   from:addr:A from:dom:D from:name:WORD from:name:none
 *   to:addr:A to:dom:D to:count:N   (To, Cc, Bcc; N a log2 bucket)
 *   rt:addr:A rt:dom:D rt:differs   (Reply-To; its domain is not From's)
 *   sender:..., rp:... (Return-Path), addr:... (other address fields)
 *   rcvd:HOST rcvd:PARENT rcvd:ip:A.B.C.D rcvd:net:A.B.C rcvd:with:PROTO
 *   mid:dom:D mid:shape:noat       (Message-ID)
 *   xm:WORD xm:full:VALUE          (X-Mailer, User-Agent)
 *   date:tz:ZONE
 *   NAME:VALUE for small-valued fields (X-Priority, Precedence...)
 *   list:ID                        (List-Id)
 *   dkim:, auth:                   (DKIM-Signature, Authentication-Results,
 *                                   Received-SPF: ms-tokenize-auth.c)
 * X-Spam-* fields are skipped: whoever set them, they are not evidence
 * (ours are added after filtering, a sender's are forged or stale); so are
 * the mailbox state fields a mail store writes (Status, X-Keywords...). */
#include "ms-tokenize-private.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_LEN 48

static const char *const enum_fields[] = {
        "x-priority",
        "x-msmail-priority",
        "importance",
        "precedence",
        "priority",
        "mime-version",
        "content-transfer-encoding",
        "x-mimeole-version",
        "x-accept-language",
};

/* Mailbox state a mail reader writes into the stored copy (mbox, UW-IMAP,
 * mutt, pine): never on a message at delivery, where the filter runs, so
 * whatever it says about a stored corpus is not evidence. */
static const char *const mailbox_fields[] = {
        "status", "x-status", "x-keywords", "x-uid", "x-imap", "x-imapbase",
};

static char
lower(unsigned char c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

size_t
tok_copy_lower(char *dest, size_t size, const unsigned char *src, size_t len)
{
	size_t i;

	if (len >= size)
		len = size - 1;
	for (i = 0; i < len; i++)
		dest[i] = lower(src[i]);
	dest[len] = '\0';
	return len;
}

/* memrchr() is a GNU extension */
static const void *
last_byte(const void *data, size_t len, unsigned char c)
{
	const unsigned char *p = data;

	while (len > 0) {
		if (p[--len] == c)
			return p + len;
	}
	return NULL;
}

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Words of a field value under a prefix, each paired with the next. */
static unsigned int
field_words(struct tok_ctx *ctx, const char *prefix, const unsigned char *text, size_t len,
            bool pairs)
{
	char buf[TOKEN_MAX], prev_text[TOKEN_MAX];
	struct ms_word word;
	size_t pos = 0, n, plen = strlen(prefix);
	uint64_t hash, prev = 0;
	unsigned int count = 0;

	while (ms_words_next(text, len, &pos, &word) && count < 200) {
		if (word.nchars < 2 && !word.cjk)
			continue;
		memcpy(buf, prefix, plen);
		n = plen + tok_word_text(&word, buf + plen, sizeof(buf) - plen);
		hash = tok_add(ctx, "", buf, n);
		if (pairs && count > 0)
			tok_add_pair(ctx, prev, prev_text, hash, buf, 1);
		prev = hash;
		if (ctx->text_cb != NULL)
			snprintf(prev_text, sizeof(prev_text), "%.*s", (int)n, buf);
		count++;
	}
	return count;
}

static void
subject(struct tok_ctx *ctx, const unsigned char *text, size_t len)
{
	unsigned int upper = 0, lowercase = 0;
	bool excl = false, dollar = false, eight_bit = false;
	size_t i;

	ctx->seen_subject = true;
	if (field_words(ctx, "subj:", text, len, true) == 0)
		tok_add(ctx, "subj:shape:empty", "", 0);
	for (i = 0; i < len; i++) {
		if (text[i] >= 'A' && text[i] <= 'Z')
			upper++;
		else if (text[i] >= 'a' && text[i] <= 'z')
			lowercase++;
		excl |= text[i] == '!';
		dollar |= text[i] == '$';
		eight_bit |= text[i] >= 0x80;
	}
	if (upper >= 4 && upper > lowercase)
		tok_add(ctx, "subj:shape:caps", "", 0);
	if (excl)
		tok_add(ctx, "subj:shape:excl", "", 0);
	if (dollar)
		tok_add(ctx, "subj:shape:dollar", "", 0);
	if (eight_bit)
		tok_add(ctx, "subj:shape:8bit", "", 0);
	if (len >= 3 && strncasecmp((const char *)text, "re:", 3) == 0)
		tok_add(ctx, "subj:shape:re", "", 0);
	else if ((len >= 3 && strncasecmp((const char *)text, "fw:", 3) == 0) ||
	         (len >= 4 && strncasecmp((const char *)text, "fwd:", 4) == 0))
		tok_add(ctx, "subj:shape:fwd", "", 0);
}

static bool
is_ipv4(const char *s, size_t len)
{
	unsigned int dots = 0, digits = 0, value = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (digits == 0)
				return false;
			dots++;
			digits = value = 0;
		} else if (s[i] >= '0' && s[i] <= '9') {
			value = value * 10 + (unsigned int)(s[i] - '0');
			if (++digits > 3 || value > 255)
				return false;
		} else
			return false;
	}
	return dots == 3 && digits > 0;
}

static bool
is_hostname(const char *s, size_t len)
{
	bool alpha = false, dot = false;
	size_t i;

	if (len < 3 || s[0] == '.' || s[0] == '-' || s[len - 1] == '.' || s[len - 1] == '-')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 'a' && c <= 'z')
			alpha = true;
		else if (c == '.')
			dot = true;
		else if (!((c >= '0' && c <= '9') || c == '-' || c == '_' || c >= 0x80))
			return false;
	}
	return alpha && dot;
}

void
tok_domain_parents(struct tok_ctx *ctx, const char *prefix, const char *host, size_t len)
{
	size_t i;

	tok_add(ctx, prefix, host, len);
	for (i = 0; i < len; i++) {
		if (host[i] == '.' && memchr(host + i + 1, '.', len - i - 1) != NULL)
			tok_add(ctx, prefix, host + i + 1, len - i - 1);
	}
}

static void
ipv4_tokens(struct tok_ctx *ctx, const char *prefix, const char *ip, size_t len)
{
	char name[48];
	const char *last = last_byte(ip, len, '.');

	snprintf(name, sizeof(name), "%sip:", prefix);
	tok_add(ctx, name, ip, len);
	snprintf(name, sizeof(name), "%snet:", prefix);
	tok_add(ctx, name, ip, (size_t)(last - ip));
}

static void
received(struct tok_ctx *ctx, const unsigned char *text, size_t len)
{
	char word[100];
	size_t i = 0, start, n;
	bool after_with = false;

	while (i < len) {
		while (i < len && (is_space(text[i]) || strchr("()[];,<>=", text[i]) != NULL))
			i++;
		start = i;
		while (i < len && !is_space(text[i]) && strchr("()[];,<>=", text[i]) == NULL)
			i++;
		if (i == start || i - start >= sizeof(word))
			continue;
		n = tok_copy_lower(word, sizeof(word), text + start, i - start);
		if (after_with)
			tok_add(ctx, "rcvd:with:", word, n);
		after_with = strcmp(word, "with") == 0;
		if (is_ipv4(word, n))
			ipv4_tokens(ctx, "rcvd:", word, n);
		else if (is_hostname(word, n) && strchr(word, '@') == NULL)
			tok_domain_parents(ctx, "rcvd:", word, n);
	}
}

static void
message_id(struct tok_ctx *ctx, const unsigned char *text, size_t len)
{
	const unsigned char *at = last_byte(text, len, '@');
	char domain[100];
	size_t start, end, n;

	ctx->seen_message_id = true;
	if (at == NULL) {
		tok_add(ctx, "mid:shape:noat", "", 0);
		return;
	}
	start = (size_t)(at - text) + 1;
	for (end = start; end < len && text[end] != '>' && !is_space(text[end]); end++)
		;
	n = tok_copy_lower(domain, sizeof(domain), text + start, end - start);
	tok_add(ctx, "mid:dom:", domain, n);
}

static void
mailer(struct tok_ctx *ctx, const unsigned char *text, size_t len)
{
	char value[48];
	size_t n = tok_copy_lower(value, sizeof(value), text, len);

	tok_add(ctx, "xm:full:", value, n);
	field_words(ctx, "xm:", text, len, false);
}

static void
date(struct tok_ctx *ctx, const unsigned char *text, size_t len)
{
	char zone[16];
	size_t end = len, start, n;

	ctx->seen_date = true;
	while (end > 0 && is_space(text[end - 1]))
		end--;
	if (end > 0 && text[end - 1] == ')') {
		/* "+0200 (CEST)": the numeric zone counts */
		while (end > 0 && text[end - 1] != '(')
			end--;
		while (end > 0 && (text[end - 1] == '(' || is_space(text[end - 1])))
			end--;
	}
	for (start = end; start > 0 && !is_space(text[start - 1]); start--)
		;
	if (end - start == 0 || end - start >= sizeof(zone))
		return;
	n = tok_copy_lower(zone, sizeof(zone), text + start, end - start);
	if (strchr(zone, ':') != NULL)
		return; /* a time: the zone is missing */
	tok_add(ctx, "date:tz:", zone, n);
}

static void
list_id(struct tok_ctx *ctx, const unsigned char *text, size_t len)
{
	const unsigned char *lt = memchr(text, '<', len), *gt;
	char id[100];
	size_t n;

	if (lt == NULL || (gt = memchr(lt, '>', len - (size_t)(lt - text))) == NULL)
		return;
	n = tok_copy_lower(id, sizeof(id), lt + 1, (size_t)(gt - lt - 1));
	tok_add(ctx, "list:", id, n);
}

/* name is one of the count lower-case field names in list */
static bool
name_in(const char *name, const char *const *list, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++) {
		if (strcmp(name, list[i]) == 0)
			return true;
	}
	return false;
}
#define NAME_IN(name, list) name_in(name, list, sizeof(list) / sizeof(list[0]))

static bool
enum_field(struct tok_ctx *ctx, const char *name, const unsigned char *text, size_t len)
{
	char prefix[NAME_MAX_LEN + 2], value[24];
	size_t i, n = 0;

	if (!NAME_IN(name, enum_fields))
		return false;
	for (i = 0; i < len && is_space(text[i]); i++)
		;
	for (; i < len && !is_space(text[i]) && text[i] != ';' && n + 1 < sizeof(value); i++)
		value[n++] = lower(text[i]);
	snprintf(prefix, sizeof(prefix), "%s:", name);
	tok_add(ctx, prefix, value, n);
	return true;
}

void
tok_header(struct tok_ctx *ctx, const struct ms_piece *piece)
{
	char name[NAME_MAX_LEN];
	const unsigned char *text = piece->text;
	size_t n, len = piece->text_len;

	if (piece->name_len == 0 || piece->name_len >= sizeof(name))
		return;
	n = tok_copy_lower(name, sizeof(name), (const unsigned char *)piece->name, piece->name_len);
	if (strncmp(name, "x-spam", 6) == 0 || NAME_IN(name, mailbox_fields))
		return;
	tok_add(ctx, "hdr:", name, n);
	if (strcmp(name, "subject") == 0)
		subject(ctx, text, len);
	else if (strcmp(name, "received") == 0) {
		if (ctx->received++ < MAX_RECEIVED)
			received(ctx, text, len);
	} else if (strcmp(name, "message-id") == 0)
		message_id(ctx, text, len);
	else if (strcmp(name, "x-mailer") == 0 || strcmp(name, "user-agent") == 0)
		mailer(ctx, text, len);
	else if (strcmp(name, "date") == 0)
		date(ctx, text, len);
	else if (strcmp(name, "list-id") == 0)
		list_id(ctx, text, len);
	else if (!tok_auth_field(ctx, name, text, len))
		(void)enum_field(ctx, name, text, len);
}

static const char *
address_role(const char *name)
{
	if (strcmp(name, "from") == 0)
		return "from";
	if (strcmp(name, "to") == 0 || strcmp(name, "cc") == 0 || strcmp(name, "bcc") == 0)
		return "to";
	if (strcmp(name, "reply-to") == 0)
		return "rt";
	if (strcmp(name, "sender") == 0)
		return "sender";
	if (strcmp(name, "return-path") == 0)
		return "rp";
	return "addr";
}

void
tok_address(struct tok_ctx *ctx, const struct ms_piece *piece)
{
	char name[NAME_MAX_LEN], spec[128], prefix[32];
	const char *role, *at;
	size_t n;

	if (piece->name_len >= sizeof(name))
		return;
	tok_copy_lower(name, sizeof(name), (const unsigned char *)piece->name, piece->name_len);
	role = address_role(name);
	n = tok_copy_lower(spec, sizeof(spec), piece->text, piece->text_len);
	snprintf(prefix, sizeof(prefix), "%s:addr:", role);
	tok_add(ctx, prefix, spec, n);
	if ((at = strrchr(spec, '@')) != NULL && at[1] != '\0') {
		snprintf(prefix, sizeof(prefix), "%s:dom:", role);
		tok_domain_parents(ctx, prefix, at + 1, strlen(at + 1));
	}
	if (strcmp(role, "from") == 0) {
		ctx->seen_from = true;
		snprintf(ctx->from_domain, sizeof(ctx->from_domain), "%s",
		         at == NULL ? "" : at + 1);
		if (field_words(ctx, "from:name:", piece->display, piece->display_len, false) == 0)
			tok_add(ctx, "from:name:none", "", 0);
	} else if (strcmp(role, "rt") == 0)
		snprintf(ctx->reply_to_domain, sizeof(ctx->reply_to_domain), "%s",
		         at == NULL ? "" : at + 1);
	else if (strcmp(role, "to") == 0)
		ctx->recipients++;
}

void
tok_url_host(struct tok_ctx *ctx, const char *prefix, const unsigned char *host, size_t len)
{
	char name[128];
	const char *tld;
	size_t n;

	n = tok_copy_lower(name, sizeof(name), host, len);
	while (n > 0 && (name[n - 1] == '.' || name[n - 1] == '-'))
		name[--n] = '\0';
	if (n == 0)
		return;
	if (is_ipv4(name, n)) {
		tok_add(ctx, prefix, "ip", 2);
		tok_add(ctx, prefix, name, n);
		return;
	}
	tok_domain_parents(ctx, prefix, name, n);
	if ((tld = strrchr(name, '.')) != NULL && tld[1] != '\0')
		tok_add(ctx, "urltld:", tld + 1, strlen(tld + 1));
}

void
tok_url(struct tok_ctx *ctx, const unsigned char *url, size_t len)
{
	const unsigned char *p = memchr(url, ':', len), *at, *end, *colon;

	if (len > 7 && strncasecmp((const char *)url, "mailto:", 7) == 0) {
		if ((at = memchr(url, '@', len)) == NULL)
			return;
		for (end = at + 1; end < url + len && *end != '?' && *end != '>'; end++)
			;
		tok_add(ctx, "mailto:", at + 1, (size_t)(end - at - 1));
		return;
	}
	if (p == NULL || (size_t)(url + len - p) < 3 || p[1] != '/' || p[2] != '/')
		return;
	p += 3;
	for (end = p;
	     end < url + len && *end != '/' && *end != '?' && *end != '#' && !is_space(*end); end++)
		;
	/* user:password@host:port */
	if ((at = last_byte(p, (size_t)(end - p), '@')) != NULL)
		p = at + 1;
	if ((colon = memchr(p, ':', (size_t)(end - p))) != NULL)
		end = colon;
	tok_url_host(ctx, "url:", p, (size_t)(end - p));
	ctx->urls++;
}

void
tok_header_finish(struct tok_ctx *ctx)
{
	char buf[32];
	int len;

	if (!ctx->seen_subject)
		tok_add(ctx, "hdr:none:subject", "", 0);
	if (!ctx->seen_from)
		tok_add(ctx, "hdr:none:from", "", 0);
	if (!ctx->seen_date)
		tok_add(ctx, "hdr:none:date", "", 0);
	if (!ctx->seen_message_id)
		tok_add(ctx, "hdr:none:message-id", "", 0);
	len = snprintf(buf, sizeof(buf), "to:count:%u", tok_log2_bucket(ctx->recipients));
	tok_add(ctx, "", buf, (size_t)len);
	if (ctx->reply_to_domain[0] != '\0' &&
	    strcasecmp(ctx->reply_to_domain, ctx->from_domain) != 0)
		tok_add(ctx, "rt:differs", "", 0);
}
