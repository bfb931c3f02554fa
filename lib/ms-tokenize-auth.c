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

/* "method[/version] = result" at the start of one ;-separated resinfo */
static void
auth_result(struct tok_ctx *ctx, const char *id, const unsigned char *text, size_t len)
{
	char method[AUTH_NAME_MAX], result[AUTH_NAME_MAX], token[TOKEN_MAX];
	size_t pos = 0, n;

	skip_cfws(text, len, &pos);
	if (name_at(text, len, &pos, method) == 0)
		return;
	if (pos < len && text[pos] == '/') {
		pos++;
		(void)name_at(text, len, &pos, result); /* the method's version: not evidence */
	}
	skip_cfws(text, len, &pos);
	if (pos >= len || text[pos++] != '=')
		return;
	skip_cfws(text, len, &pos);
	if (name_at(text, len, &pos, result) == 0)
		return;
	n = (size_t)snprintf(token, sizeof(token), "auth:%s:%s:%s", id, method, result);
	if (n < sizeof(token))
		tok_add(ctx, "", token, n);
}

/* RFC 8601: authserv-id [version] *(";" resinfo), or "; none" */
static void
authentication_results(struct tok_ctx *ctx, const unsigned char *text, size_t len)
{
	char id[AUTH_NAME_MAX];
	const unsigned char *semi;
	size_t pos = 0, n;

	skip_cfws(text, len, &pos);
	if ((n = name_at(text, len, &pos, id)) == 0)
		return;
	tok_add(ctx, "auth:id:", id, n);
	while ((semi = memchr(text + pos, ';', len - pos)) != NULL) {
		pos = (size_t)(semi - text) + 1;
		semi = memchr(text + pos, ';', len - pos);
		auth_result(ctx, id, text + pos,
		            semi == NULL ? len - pos : (size_t)(semi - text) - pos);
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
	const unsigned char *semi;
	size_t pos = 0, n;

	while (pos < len) {
		skip_cfws(text, len, &pos);
		if (name_at(text, len, &pos, tag) > 0 && strcmp(tag, "d") == 0) {
			skip_cfws(text, len, &pos);
			if (pos < len && text[pos++] == '=') {
				skip_cfws(text, len, &pos);
				if ((n = name_at(text, len, &pos, domain)) > 0 &&
				    strchr(domain, '.') != NULL)
					tok_domain_parents(ctx, "dkim:dom:", domain, n);
				return;
			}
		}
		if ((semi = memchr(text + pos, ';', len - pos)) == NULL)
			return;
		pos = (size_t)(semi - text) + 1;
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
