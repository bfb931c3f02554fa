/* Header tokens of sender authentication, which today's mail carries and
 * the SpamAssassin corpus (2002-2005) does not:
 *   dkim:dom:D dkim:dom:PARENT    the d= domain of each DKIM-Signature
 *   auth:id:HOST                  who wrote an Authentication-Results field
 *   auth:HOST:METHOD:RESULT       each result in it (spf, dkim, dmarc...)
 *   auth:spf:RESULT               the result of a Received-SPF field
 * The results carry their writer's name because anyone can write the field:
 * a verdict of the site's own MTA and one a sender forged under another name
 * are different tokens, and the counts learn which writer tells the truth
 * (an MTA deletes incoming fields in its own name, RFC 8601 section 5). A DKIM
 * signature is not verified here; its domain is evidence the way From's
 * domain is, and names the bulk sender a newsletter is sent through. */
#include "ms-tokenize-private.h"

#include <stdio.h>
#include <string.h>

#define AUTH_NAME_MAX 64 /* bytes of an authserv-id, method or result kept */

static bool
is_name_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

/* The run of name bytes at text[*pos], lower-cased into buf (of
 * AUTH_NAME_MAX bytes); *pos moves past it. Returns its length, 0 if none or
 * too long to be a name. */
static size_t
name_at(const unsigned char *text, size_t len, size_t *pos, char *buf)
{
	size_t start = *pos;

	while (*pos < len && is_name_byte(text[*pos]))
		(*pos)++;
	if (*pos - start >= AUTH_NAME_MAX)
		return 0;
	return tok_copy_lower(buf, AUTH_NAME_MAX, text + start, *pos - start);
}

/* Skip white space and RFC 5322 comments, which may nest. */
static void
skip_cfws(const unsigned char *text, size_t len, size_t *pos)
{
	unsigned int depth = 0;

	for (; *pos < len; (*pos)++) {
		if (text[*pos] == '(')
			depth++;
		else if (text[*pos] == ')' && depth > 0)
			depth--;
		else if (depth == 0 && text[*pos] != ' ' && text[*pos] != '\t' &&
		         text[*pos] != '\r' && text[*pos] != '\n')
			return;
	}
}

/* The next ;-separated item of text at *pos, which moves past it. Both
 * fields are such lists: RFC 8601's resinfos, RFC 6376's tags. */
static bool
next_item(const unsigned char *text, size_t len, size_t *pos, const unsigned char **item_r,
          size_t *item_len_r)
{
	const unsigned char *semi;

	if (*pos > len)
		return false;
	*item_r = text + *pos;
	semi = memchr(*item_r, ';', len - *pos);
	*item_len_r = semi == NULL ? len - *pos : (size_t)(semi - *item_r);
	*pos += *item_len_r + 1;
	return true;
}

/* "name[/version] = value" at the start of an item, comments and white
 * space anywhere between; the version is not evidence. */
static bool
name_value(const unsigned char *item, size_t len, char *name, char *value)
{
	size_t pos = 0;

	skip_cfws(item, len, &pos);
	if (name_at(item, len, &pos, name) == 0)
		return false;
	if (pos < len && item[pos] == '/') {
		pos++;
		(void)name_at(item, len, &pos, value);
	}
	skip_cfws(item, len, &pos);
	if (pos >= len || item[pos++] != '=')
		return false;
	skip_cfws(item, len, &pos);
	return name_at(item, len, &pos, value) > 0;
}

/* RFC 8601: authserv-id [version] *(";" method=result ...), or "; none" */
static void
authentication_results(struct tok_ctx *ctx, const unsigned char *text, size_t len)
{
	char id[AUTH_NAME_MAX], method[AUTH_NAME_MAX], result[AUTH_NAME_MAX], token[TOKEN_MAX];
	const unsigned char *item;
	size_t pos = 0, item_len, start = 0, n;

	(void)next_item(text, len, &pos, &item, &item_len);
	skip_cfws(item, item_len, &start);
	if ((n = name_at(item, item_len, &start, id)) == 0)
		return;
	tok_add(ctx, "auth:id:", id, n);
	while (next_item(text, len, &pos, &item, &item_len)) {
		if (!name_value(item, item_len, method, result))
			continue;
		n = (size_t)snprintf(token, sizeof(token), "auth:%s:%s:%s", id, method, result);
		if (n < sizeof(token))
			tok_add(ctx, "", token, n);
	}
}

/* RFC 7208: the result is the field's first word */
static void
received_spf(struct tok_ctx *ctx, const unsigned char *text, size_t len)
{
	char result[AUTH_NAME_MAX];
	size_t pos = 0, n;

	skip_cfws(text, len, &pos);
	if ((n = name_at(text, len, &pos, result)) > 0)
		tok_add(ctx, "auth:spf:", result, n);
}

/* RFC 6376: a tag list; the signing domain is d= */
static void
dkim_signature(struct tok_ctx *ctx, const unsigned char *text, size_t len)
{
	char tag[AUTH_NAME_MAX], domain[AUTH_NAME_MAX];
	const unsigned char *item;
	size_t pos = 0, item_len;

	while (next_item(text, len, &pos, &item, &item_len)) {
		if (!name_value(item, item_len, tag, domain) || strcmp(tag, "d") != 0)
			continue;
		if (strchr(domain, '.') != NULL)
			tok_domain_parents(ctx, "dkim:dom:", domain, strlen(domain));
		return;
	}
}

bool
tok_auth_field(struct tok_ctx *ctx, const char *name, const unsigned char *text, size_t len)
{
	if (strcmp(name, "authentication-results") == 0)
		authentication_results(ctx, text, len);
	else if (strcmp(name, "received-spf") == 0)
		received_spf(ctx, text, len);
	else if (strcmp(name, "dkim-signature") == 0)
		dkim_signature(ctx, text, len);
	else
		return false;
	return true;
}
