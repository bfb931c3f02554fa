#include "ms-resp.h"

#include <stdlib.h>
#include <string.h>

/* "$" + length digits + CRLF + argument + CRLF, for a short argument */
#define RESP_SMALL_ARG 48

void
ms_resp_init(struct ms_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
}

void
ms_resp_free(struct ms_resp *resp)
{
	free(resp->data);
	ms_resp_init(resp);
}

static bool
reserve(struct ms_resp *resp, size_t more)
{
	size_t size;
	char *data;

	if (resp->len + more <= resp->size)
		return !resp->failed;
	size = resp->size == 0 ? 4096 : resp->size;
	while (size < resp->len + more)
		size *= 2;
	if ((data = realloc(resp->data, size)) == NULL) {
		resp->failed = true;
		return false;
	}
	resp->data = data;
	resp->size = size;
	return !resp->failed;
}

/* Decimal digits of value at p; returns their count. */
static size_t
put_uint(char *p, unsigned long long value)
{
	char digits[24];
	size_t n = 0, i;

	do {
		digits[n++] = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0);
	for (i = 0; i < n; i++)
		p[i] = digits[n - 1 - i];
	return n;
}

static void
put_header(struct ms_resp *resp, char type, unsigned long long value)
{
	char *p = resp->data + resp->len;

	*p++ = type;
	p += put_uint(p, value);
	*p++ = '\r';
	*p++ = '\n';
	resp->len = (size_t)(p - resp->data);
}

void
ms_resp_command(struct ms_resp *resp, size_t nargs)
{
	resp->len = 0;
	resp->failed = false;
	if (reserve(resp, RESP_SMALL_ARG))
		put_header(resp, '*', nargs);
}

void
ms_resp_arg(struct ms_resp *resp, const void *arg, size_t len)
{
	if (!reserve(resp, len + RESP_SMALL_ARG))
		return;
	put_header(resp, '$', len);
	memcpy(resp->data + resp->len, arg, len);
	resp->len += len;
	resp->data[resp->len++] = '\r';
	resp->data[resp->len++] = '\n';
}

void
ms_resp_arg_str(struct ms_resp *resp, const char *arg)
{
	ms_resp_arg(resp, arg, strlen(arg));
}

void
ms_resp_arg_uint(struct ms_resp *resp, const char *prefix, unsigned long long value)
{
	size_t plen = strlen(prefix), n;
	char number[RESP_SMALL_ARG];

	if (plen > 8) {
		resp->failed = true;
		return;
	}
	memcpy(number, prefix, plen);
	n = plen + put_uint(number + plen, value);
	ms_resp_arg(resp, number, n);
}

bool
ms_resp_failed(const struct ms_resp *resp)
{
	return resp->failed;
}
