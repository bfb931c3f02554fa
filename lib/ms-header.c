#include "ms-header.h"

#include <string.h>
#include <strings.h>

/* End of the line starting at p (after its LF, or end). */
static size_t
line_end(const unsigned char *msg, size_t size, size_t p)
{
	const unsigned char *nl = memchr(msg + p, '\n', size - p);

	return nl == NULL ? size : (size_t)(nl - msg) + 1;
}

static bool
is_blank_line(const unsigned char *line, size_t len)
{
	return (len == 1 && line[0] == '\n') || (len == 2 && line[0] == '\r' && line[1] == '\n');
}

size_t
ms_header_length(const unsigned char *msg, size_t size)
{
	size_t p = 0, end;

	while (p < size) {
		end = line_end(msg, size, p);
		if (is_blank_line(msg + p, end - p))
			return p;
		p = end;
	}
	return size;
}

static bool
is_continuation(const unsigned char *line, size_t len)
{
	return len > 0 && (line[0] == ' ' || line[0] == '\t');
}

/* Does the field line start with name (case-insensitive), and is the
 * rest up to ':' nothing or (for a prefix) anything? */
static bool
field_is(const unsigned char *line, size_t len, const char *name, bool prefix)
{
	size_t n = strlen(name), i;

	if (len < n || strncasecmp((const char *)line, name, n) != 0)
		return false;
	for (i = n; i < len && line[i] != ':'; i++) {
		if (!prefix && line[i] != ' ' && line[i] != '\t')
			return false;
	}
	return i < len;
}

static bool
dropped_field(const unsigned char *line, size_t len)
{
	return field_is(line, len, "X-Spam-", true) || field_is(line, len, "Return-Path", false);
}

size_t
ms_header_filter(const unsigned char *hdr, size_t hdrlen, unsigned char *out)
{
	size_t p = 0, end, used = 0;
	bool dropping = false;

	while (p < hdrlen) {
		end = line_end(hdr, hdrlen, p);
		if (!is_continuation(hdr + p, end - p))
			dropping = dropped_field(hdr + p, end - p);
		if (!dropping) {
			memcpy(out + used, hdr + p, end - p);
			used += end - p;
		}
		p = end;
	}
	return used;
}

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
trim_spaces(const unsigned char **value, size_t *len)
{
	while (*len > 0 && is_space((*value)[0])) {
		(*value)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*value)[*len - 1]))
		(*len)--;
}

/* Trim value (after ':') to the address inside optional <>. */
static void
trim_value(const unsigned char **value, size_t *len)
{
	trim_spaces(value, len);
	if (*len >= 2 && (*value)[0] == '<' && (*value)[*len - 1] == '>') {
		(*value)++;
		*len -= 2;
		trim_spaces(value, len);
	}
}

/* Does the value of a field (after ':') equal addr, with or without <>? */
static bool
value_is(const unsigned char *value, size_t len, const char *addr)
{
	size_t n = strlen(addr);

	trim_value(&value, &len);
	return len == n && strncasecmp((const char *)value, addr, n) == 0;
}

bool
ms_header_top_delivered_to(const unsigned char *hdr, size_t hdrlen, const char *rcpt)
{
	const unsigned char *colon;
	size_t p = 0, end;

	while (p < hdrlen) {
		end = line_end(hdr, hdrlen, p);
		if (field_is(hdr + p, end - p, "Delivered-To", false)) {
			colon = memchr(hdr + p, ':', end - p);
			if (value_is(colon + 1, end - p - (size_t)(colon + 1 - (hdr + p)), rcpt))
				return true;
		} else if (!field_is(hdr + p, end - p, "Return-Path", false))
			return false;
		p = end;
	}
	return false;
}

size_t
ms_header_mbox_from_length(const unsigned char *msg, size_t size)
{
	if (size < 5 || memcmp(msg, "From ", 5) != 0)
		return 0;
	return line_end(msg, size, 0);
}

bool
ms_header_return_path(const unsigned char *hdr, size_t hdrlen, char *buf, size_t bufsize)
{
	const unsigned char *value;
	size_t p = 0, end, len;

	for (; p < hdrlen; p = end) {
		end = line_end(hdr, hdrlen, p);
		if (!field_is(hdr + p, end - p, "Return-Path", false))
			continue;
		value = (const unsigned char *)memchr(hdr + p, ':', end - p) + 1;
		len = end - (size_t)(value - hdr);
		trim_value(&value, &len);
		if (len >= bufsize || memchr(value, '\0', len) != NULL)
			return false;
		memcpy(buf, value, len);
		buf[len] = '\0';
		return true;
	}
	return false;
}
