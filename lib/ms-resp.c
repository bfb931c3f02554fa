#include "ms-resp.h"

#include <stdlib.h>
#include <string.h>

/* "$" + length digits + CRLF + argument + CRLF, for a short argument */
#define RESP_SMALL_ARG 48
/* what an argument adds to its own bytes: "$", up to 20 digits, 2 CRLF */
#define RESP_ARG_FRAME 25

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

/* The decimal digits of value, written backwards so that they end just
 * before end: one pass, no reversal, two digits a division (a slot number
 * has seven). Returns where they start. */
static char *
put_uint_before(char *end, unsigned long long value)
{
	static const char pairs[] = "00010203040506070809101112131415161718192021222324"
	                            "25262728293031323334353637383940414243444546474849"
	                            "50515253545556575859606162636465666768697071727374"
	                            "75767778798081828384858687888990919293949596979899";
	unsigned int two;

	while (value >= 100) {
		two = (unsigned int)(value % 100);
		value /= 100;
		end -= 2;
		memcpy(end, pairs + 2 * two, 2);
	}
	if (value >= 10) {
		end -= 2;
		memcpy(end, pairs + 2 * value, 2);
	} else {
		*--end = (char)('0' + value);
	}
	return end;
}

/* type, value in decimal, CRLF at p; returns the end. Most headers of the
 * token commands are one digit. */
static char *
put_header(char *p, char type, unsigned long long value)
{
	char digits[24], *start;
	size_t n;

	*p++ = type;
	if (value < 10) {
		*p++ = (char)('0' + value);
	} else {
		start = put_uint_before(digits + sizeof(digits), value);
		n = (size_t)(digits + sizeof(digits) - start);
		memcpy(p, start, n);
		p += n;
	}
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

void
ms_resp_command(struct ms_resp *resp, size_t nargs)
{
	resp->len = 0;
	resp->failed = false;
	if (reserve(resp, RESP_SMALL_ARG))
		resp->len = (size_t)(put_header(resp->data, '*', nargs) - resp->data);
}

/* one argument of len bytes from arg, in wire form at p, where there is
 * room; returns the end */
static char *
put_arg(char *p, const void *arg, size_t len)
{
	p = put_header(p, '$', len);
	memcpy(p, arg, len);
	p += len;
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

void
ms_resp_arg(struct ms_resp *resp, const void *arg, size_t len)
{
	if (reserve(resp, len + RESP_SMALL_ARG))
		resp->len = (size_t)(put_arg(resp->data + resp->len, arg, len) - resp->data);
}

void
ms_resp_arg_str(struct ms_resp *resp, const char *arg)
{
	ms_resp_arg(resp, arg, strlen(arg));
}

/* Room for the prefix and digits of ms_resp_arg_uint: 1 + 20 */
#define RESP_UINT_MAX 24

void
ms_resp_arg_uint(struct ms_resp *resp, char prefix, unsigned long long value)
{
	/* the number ends in the middle, so that a copy of a fixed
	 * RESP_UINT_MAX bytes from its start stays inside */
	char number[2 * RESP_UINT_MAX], *start, *p;
	size_t n;

	start = put_uint_before(number + RESP_UINT_MAX, value);
	if (prefix != '\0')
		*--start = prefix;
	n = (size_t)(number + RESP_UINT_MAX - start);
	if (!reserve(resp, RESP_UINT_MAX + RESP_ARG_FRAME))
		return;
	p = put_header(resp->data + resp->len, '$', n);
	/* a fixed-size copy is a few moves, not a call; what it copies past
	 * the number is overwritten or beyond len */
	memcpy(p, start, RESP_UINT_MAX);
	p += n;
	*p++ = '\r';
	*p++ = '\n';
	resp->len = (size_t)(p - resp->data);
}

void
ms_resp_fixed_init(struct ms_resp_fixed *fixed)
{
	/* all of data is copied (ms_resp_arg_fixed): no byte left unset */
	memset(fixed, 0, sizeof(*fixed));
}

void
ms_resp_fixed_add(struct ms_resp_fixed *fixed, const char *arg)
{
	size_t len = strlen(arg);

	if (len > sizeof(fixed->data) || fixed->len + len + RESP_ARG_FRAME > sizeof(fixed->data)) {
		fixed->failed = true;
		return;
	}
	fixed->len = (size_t)(put_arg(fixed->data + fixed->len, arg, len) - fixed->data);
}

void
ms_resp_arg_fixed(struct ms_resp *resp, const struct ms_resp_fixed *fixed)
{
	if (fixed->failed)
		resp->failed = true;
	/* all of data, a fixed-size copy (a few moves, not a call): what it
	 * copies past len is overwritten or beyond the command */
	if (!reserve(resp, sizeof(fixed->data)))
		return;
	memcpy(resp->data + resp->len, fixed->data, sizeof(fixed->data));
	resp->len += fixed->len;
}

bool
ms_resp_failed(const struct ms_resp *resp)
{
	return resp->failed;
}
