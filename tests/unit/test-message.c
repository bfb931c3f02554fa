#include "ms-message.h"
#include "ms-test.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The pieces of one message, each as "TYPE name|text" (display names of
 * addresses appended as "|display"), joined by newlines. */
struct collect {
	char *out;
	size_t len, cap;
	unsigned int max_part, max_depth, npieces;
};

static const char *const type_names[] = {
        [MS_PIECE_HEADER] = "HEADER", [MS_PIECE_ADDRESS] = "ADDRESS",
        [MS_PIECE_TEXT] = "TEXT",     [MS_PIECE_HTML_TEXT] = "HTML",
        [MS_PIECE_URL] = "URL",       [MS_PIECE_ATTACHMENT] = "ATTACHMENT",
        [MS_PIECE_META] = "META",
};

static void
append_raw(struct collect *c, const void *data, size_t len)
{
	if (c->len + len + 1 > c->cap) {
		c->cap = (c->len + len + 1) * 2;
		c->out = realloc(c->out, c->cap);
		ck_assert_ptr_nonnull(c->out);
	}
	memcpy(c->out + c->len, data, len);
	c->len += len;
	c->out[c->len] = '\0';
}

/* NULs shown as \0, so that the result is a C string */
static void
append(struct collect *c, const void *data, size_t len)
{
	const char *p = data, *nul;

	while ((nul = memchr(p, '\0', len)) != NULL) {
		append_raw(c, p, (size_t)(nul - p));
		append_raw(c, "\\0", 2);
		len -= (size_t)(nul - p) + 1;
		p = nul + 1;
	}
	append_raw(c, p, len);
}

static void
collect_cb(const struct ms_piece *piece, void *context)
{
	struct collect *c = context;
	const char *type = type_names[piece->type];

	c->npieces++;
	if (piece->part > c->max_part)
		c->max_part = piece->part;
	if (piece->depth > c->max_depth)
		c->max_depth = piece->depth;
	append(c, type, strlen(type));
	append(c, " ", 1);
	if (piece->name != NULL)
		append(c, piece->name, piece->name_len);
	append(c, "|", 1);
	append(c, piece->text, piece->text_len);
	if (piece->type == MS_PIECE_ADDRESS) {
		append(c, "|", 1);
		append(c, piece->display, piece->display_len);
	}
	append(c, "\n", 1);
}

static struct collect
parse_limited(const char *msg, size_t size, const struct ms_message_limits *limits)
{
	struct collect c;

	memset(&c, 0, sizeof(c));
	append(&c, "", 0);
	ms_message_parse((const unsigned char *)msg, size, limits, collect_cb, &c);
	return c;
}

static struct collect
parse(const char *msg)
{
	struct ms_message_limits limits;

	ms_message_limits_default(&limits);
	return parse_limited(msg, strlen(msg), &limits);
}

#define expect_piece(c, line)                                                      \
	ck_assert_msg(strstr((c).out, "\n" line "\n") != NULL ||                   \
	                      strncmp((c).out, line "\n", strlen(line "\n")) == 0, \
	              "missing piece \"%s\" in:\n%.3000s", line, (c).out)
#define expect_no_piece(c, line)                                                             \
	ck_assert_msg(strstr((c).out, line) == NULL, "unexpected \"%s\" in:\n%.3000s", line, \
	              (c).out)

START_TEST(test_plain)
{
	struct collect c = parse("From: Alice <alice@example.com>\r\n"
	                         "Subject: hello\r\n\tworld\r\n"
	                         "\r\n"
	                         "Just text.\r\n");

	expect_piece(c, "HEADER From|Alice <alice@example.com>");
	expect_piece(c, "ADDRESS From|alice@example.com|Alice");
	expect_piece(c, "HEADER Subject|hello world");
	expect_piece(c, "TEXT |Just text.\r\n");
	expect_piece(c, "META type|text/plain");
	expect_piece(c, "META charset|none");
	expect_piece(c, "META layout|text/plain");
	expect_no_piece(c, "META form");
	free(c.out);
}
END_TEST

START_TEST(test_base64)
{
	/* "Hello, base64 world!" */
	struct collect c = parse("Content-Type: text/plain; charset=utf-8\n"
	                         "Content-Transfer-Encoding: base64\n\n"
	                         "SGVsbG8sIGJhc2U2\nNCB3b3JsZCE=\n");

	expect_piece(c, "TEXT |Hello, base64 world!");
	expect_piece(c, "META encoding|base64");
	expect_piece(c, "META charset|utf-8");
	free(c.out);
}
END_TEST

START_TEST(test_quoted_printable)
{
	struct collect c = parse("Content-Type: text/plain; charset=iso-8859-1\n"
	                         "Content-Transfer-Encoding: quoted-printable\n\n"
	                         "caf=E9 au lait, tr=\n"
	                         "=E8s bon =3D good\n");

	/* the QP decoder ends lines with CRLF */
	expect_piece(c, "TEXT |caf\xc3\xa9 au lait, tr\xc3\xa8s bon = good\r\n");
	expect_piece(c, "META encoding|quoted-printable");
	free(c.out);
}
END_TEST

START_TEST(test_rfc2047)
{
	struct collect c =
	        parse("Subject: =?UTF-8?B?R3LDvMOfZQ==?= and =?iso-8859-1?Q?caf=E9_cr=E8me?=\n"
	              "From: =?koi8-r?B?8NLJ18XU?= <ivan@example.ru>\n\nx\n");

	/* B and Q encodings, two charsets, the blank between encoded words */
	expect_piece(c, "HEADER Subject|Gr\xc3\xbc\xc3\x9f"
	                "e and caf\xc3\xa9 cr\xc3\xa8me");
	/* koi8-r "Привет" in a display name */
	expect_piece(
	        c, "ADDRESS From|ivan@example.ru|\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
	free(c.out);
}
END_TEST

START_TEST(test_charsets)
{
	struct collect c;

	c = parse("Content-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n");
	expect_piece(c, "TEXT |\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\n");
	free(c.out);
	/* 0x80 is the euro sign in windows-1252, a control in iso-8859-1 */
	c = parse("Content-Type: text/plain; charset=windows-1252\n\n\x80 5\n");
	expect_piece(c, "TEXT |\xe2\x82\xac 5\n");
	free(c.out);
	c = parse("Content-Type: text/plain; charset=iso-8859-1\n\n\xe9t\xe9\n");
	expect_piece(c, "TEXT |\xc3\xa9t\xc3\xa9\n");
	free(c.out);
}
END_TEST

/* A charset iconv does not know: the text is taken as UTF-8, and bytes that
 * are not UTF-8 become U+FFFD. */
START_TEST(test_unknown_charset)
{
	struct collect c = parse("Content-Type: text/plain; charset=x-no-such-charset\n\n"
	                         "ok \xc3\xa9 bad \xff\xfe end\n");

	expect_piece(c, "META charset|x-no-such-charset");
	ck_assert_msg(strstr(c.out, "TEXT |ok \xc3\xa9 bad \xef\xbf\xbd") != NULL, "%s", c.out);
	ck_assert_msg(strstr(c.out, " end\n") != NULL, "%s", c.out);
	free(c.out);
}
END_TEST

START_TEST(test_html)
{
	struct collect c = parse("Content-Type: text/html; charset=utf-8\n\n"
	                         "<html><head><style>p { color: red }</style></head><body>\n"
	                         "<p>Fish &amp; chips &eacute;&#233;&#x41;</p><!-- a comment -->"
	                         "<script>var x = 1;</script>"
	                         "<a href=\"http://Click.Example.COM/x?y\">click here</a>"
	                         "<img src='http://img.example.net/a.gif'>"
	                         "<div style=\"DISPLAY: none\">invisible</div></body></html>\n");

	ck_assert_msg(strstr(c.out, "Fish & chips \xc3\xa9\xc3\xa9"
	                            "A") != NULL,
	              "%s", c.out);
	ck_assert_msg(strstr(c.out, "click here") != NULL, "%s", c.out);
	expect_no_piece(c, "color: red");
	expect_no_piece(c, "var x");
	expect_no_piece(c, "a comment");
	expect_piece(c, "URL |http://Click.Example.COM/x?y");
	expect_piece(c, "URL |http://img.example.net/a.gif");
	expect_piece(c, "META html|img");
	expect_piece(c, "META html|script");
	expect_piece(c, "META html|hidden");
	expect_piece(c, "META form|html-only");
	free(c.out);
}
END_TEST

START_TEST(test_multipart)
{
	struct collect c = parse("MIME-Version: 1.0\n"
	                         "Content-Type: multipart/mixed; boundary=\"outer\"\n\n"
	                         "preamble\n"
	                         "--outer\n"
	                         "Content-Type: multipart/alternative; boundary=inner\n\n"
	                         "--inner\n"
	                         "Content-Type: text/plain\n\nplain part\n"
	                         "--inner\n"
	                         "Content-Type: text/html\n\n<b>html part</b>\n"
	                         "--inner--\n"
	                         "--outer\n"
	                         "Content-Type: application/octet-stream; name=\"x.bin\"\n"
	                         "Content-Disposition: attachment; filename=\"Invoice.PDF.exe\"\n"
	                         "Content-Transfer-Encoding: base64\n\n"
	                         "AAECAwQ=\n"
	                         "--outer--\n"
	                         "epilogue\n");

	expect_piece(c, "META layout|multipart/mixed(multipart/alternative(text/plain,text/html),"
	                "application/octet-stream)");
	expect_piece(c, "TEXT |plain part");
	ck_assert_msg(strstr(c.out, "HTML |html part") != NULL, "%s", c.out);
	expect_piece(c, "ATTACHMENT application/octet-stream|Invoice.PDF.exe");
	expect_no_piece(c, "preamble");
	expect_no_piece(c, "epilogue");
	expect_no_piece(c, "html-only");
	ck_assert_uint_eq(c.max_part, 4);
	ck_assert_uint_eq(c.max_depth, 2);
	free(c.out);
}
END_TEST

/* The pieces of one text part, as reported. */
struct text_pieces {
	char *text;
	size_t len, count;
	bool cut_ok; /* each piece before the last ended in whitespace */
	bool flags_ok;
	char last_char;
};

static void
text_cb(const struct ms_piece *piece, void *context)
{
	struct text_pieces *t = context;

	if (piece->type != MS_PIECE_TEXT)
		return;
	if (t->count > 0 && strchr(" \t\r\n", t->last_char) == NULL)
		t->cut_ok = false;
	if (piece->continued != (t->count > 0))
		t->flags_ok = false;
	t->text = realloc(t->text, t->len + piece->text_len + 1);
	ck_assert_ptr_nonnull(t->text);
	memcpy(t->text + t->len, piece->text, piece->text_len);
	t->len += piece->text_len;
	t->text[t->len] = '\0';
	t->last_char = piece->text_len > 0 ? (char)piece->text[piece->text_len - 1] : '\0';
	t->count++;
}

/* A long text part comes in pieces cut after whitespace, never in a word;
 * together they are the whole text. */
START_TEST(test_text_pieces)
{
	struct text_pieces t = {NULL, 0, 0, true, true, '\0'};
	struct ms_message_limits limits;
	size_t size = 100 * 1024, pos, body, i;
	char *msg = malloc(size + 256);

	ck_assert_ptr_nonnull(msg);
	pos = (size_t)sprintf(msg, "MIME-Version: 1.0\n"
	                           "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
	                           "Content-Type: text/plain\n\n");
	body = pos;
	for (i = 0; pos < size; i++)
		pos += (size_t)sprintf(msg + pos, "word%zu%s", i, i % 9 == 8 ? "\r\n" : "\t ");
	pos += (size_t)sprintf(msg + pos, "tail\n--b--\n");
	ms_message_limits_default(&limits);
	ms_message_parse((const unsigned char *)msg, pos, &limits, text_cb, &t);
	ck_assert_uint_gt(t.count, 1);
	ck_assert(t.cut_ok);
	ck_assert(t.flags_ok);
	ck_assert_uint_eq(t.len, pos - body - strlen("\n--b--\n"));
	ck_assert_int_eq(memcmp(t.text, msg + body, t.len), 0);
	free(t.text);
	free(msg);
}
END_TEST

/* Undeclared 8-bit text that is not UTF-8, read in windows-1252 when no
 * text part declares a charset: the Subject, a display name and the body
 * are converted, where the decoder replaced every byte. */
START_TEST(test_undeclared_windows_1252)
{
	/* GB2312 "代开发票" in the Subject and "本公司" in the body */
	struct collect c = parse("From: \xe9t\xe9 <a@b.example>\n"
	                         "Subject: =?utf-8?Q?=C3=A9?= \xb4\xfa\xbf\xaa\xb7\xa2\xc6\xb1\n"
	                         "\n\xb1\xbe\xb9\xab\xcb\xbe \x80\n");

	/* the encoded word decodes as it did; the rest as windows-1252 */
	expect_piece(c, "HEADER Subject|\xc3\xa9 \xc2\xb4\xc3\xba\xc2\xbf\xc2\xaa\xc2\xb7\xc2\xa2"
	                "\xc3\x86\xc2\xb1");
	expect_piece(c, "ADDRESS From|a@b.example|\xc3\xa9t\xc3\xa9");
	expect_piece(c, "TEXT |\xc2\xb1\xc2\xbe\xc2\xb9\xc2\xab\xc3\x8b\xc2\xbe \xe2\x82\xac\n");
	expect_piece(c, "META charset|none");
	expect_piece(c, "META form|8bit-header");
	free(c.out);
}
END_TEST

static char *
base64_lines(const unsigned char *data, size_t size)
{
	static const char digits[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(size * 2 + 16), *p = out;
	size_t i;
	unsigned int v;

	ck_assert_ptr_nonnull(out);
	for (i = 0; i < size; i += 3) {
		v = (unsigned int)data[i] << 16;
		if (i + 1 < size)
			v |= (unsigned int)data[i + 1] << 8;
		if (i + 2 < size)
			v |= data[i + 2];
		*p++ = digits[v >> 18];
		*p++ = digits[(v >> 12) & 63];
		*p++ = i + 1 < size ? digits[(v >> 6) & 63] : '=';
		*p++ = i + 2 < size ? digits[v & 63] : '=';
		if (i % 57 == 54)
			*p++ = '\n';
	}
	*p++ = '\n';
	*p = '\0';
	return out;
}

/* A long undeclared base64 body, decoded a slice at a time: valid UTF-8
 * comes through as it was (characters cut by a slice's end included), text
 * that is not UTF-8 only past the first slices is converted whole. */
START_TEST(test_undeclared_long)
{
	static const char head[] = "Content-Type: text/plain\n"
	                           "Content-Transfer-Encoding: base64\n\n";
	struct ms_message_limits limits;
	size_t size = 60 * 1024, len, i, prefix;
	unsigned char *body = malloc(size + 4);
	char *b64, *msg;

	ck_assert_ptr_nonnull(body);
	ms_message_limits_default(&limits);
	for (prefix = 1; prefix <= 2; prefix++) {
		struct text_pieces t = {NULL, 0, 0, true, true, '\0'};

		/* "x" or "xy", then "é " over and over: UTF-8 */
		memcpy(body, "xy", prefix);
		for (len = prefix; len + 3 <= size; len += 3)
			memcpy(body + len, "\xc3\xa9 ", 3);
		b64 = base64_lines(body, len);
		msg = malloc(sizeof(head) + strlen(b64));
		ck_assert_ptr_nonnull(msg);
		sprintf(msg, "%s%s", head, b64);
		ms_message_parse((const unsigned char *)msg, strlen(msg), &limits, text_cb, &t);
		ck_assert_uint_gt(t.count, 1);
		ck_assert_uint_eq(t.len, len);
		ck_assert_int_eq(memcmp(t.text, body, len), 0);
		free(t.text);
		free(msg);
		free(b64);
	}
	{
		struct text_pieces t = {NULL, 0, 0, true, true, '\0'};

		/* ASCII, then one Latin-1 byte 50 KB in */
		memset(body, 'a', size);
		for (i = 7; i < size; i += 8)
			body[i] = ' ';
		body[50 * 1024] = 0xe9;
		b64 = base64_lines(body, size);
		msg = malloc(sizeof(head) + strlen(b64));
		ck_assert_ptr_nonnull(msg);
		sprintf(msg, "%s%s", head, b64);
		ms_message_parse((const unsigned char *)msg, strlen(msg), &limits, text_cb, &t);
		ck_assert_uint_eq(t.len, size + 1);
		ck_assert_int_eq(memcmp(t.text + 50 * 1024, "\xc3\xa9", 2), 0);
		ck_assert_ptr_null(strstr(t.text, "\xef\xbf\xbd"));
		free(t.text);
		free(msg);
		free(b64);
	}
	free(body);
}
END_TEST

START_TEST(test_nul_bytes)
{
	static const char msg[] = "Subject: a\0b\n\nbody\0with\0nuls\n";
	struct ms_message_limits limits;
	struct collect c;

	ms_message_limits_default(&limits);
	c = parse_limited(msg, sizeof(msg) - 1, &limits);
	expect_piece(c, "META form|nul");
	expect_piece(c, "HEADER Subject|a\\0b");
	ck_assert_msg(strstr(c.out, "body") != NULL, "%s", c.out);
	free(c.out);
}
END_TEST

START_TEST(test_huge_line)
{
	struct ms_message_limits limits;
	size_t size = 3 * 1024 * 1024, i;
	char *msg = malloc(size);
	struct collect c;
	const char *text;

	ck_assert_ptr_nonnull(msg);
	memcpy(msg, "Subject: big\n\n", 14);
	for (i = 14; i < size; i++)
		msg[i] = (char)('a' + i % 26);
	ms_message_limits_default(&limits);
	c = parse_limited(msg, size, &limits);
	expect_piece(c, "META form|truncated");
	text = strstr(c.out, "TEXT |");
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_le(strcspn(text + 6, "\n"), limits.max_part_text);
	free(c.out);
	free(msg);
}
END_TEST

/* More parts than the limit: the rest is not parsed, but the message still
 * yields what was read. */
START_TEST(test_part_limit)
{
	struct ms_message_limits limits;
	struct collect c;
	char *msg = malloc(200 * 64 + 256), *p = msg;
	int i;

	ck_assert_ptr_nonnull(msg);
	p += sprintf(p, "Content-Type: multipart/mixed; boundary=b\n\n");
	for (i = 0; i < 200; i++)
		p += sprintf(p, "--b\nContent-Type: text/plain\n\npart%d\n", i);
	p += sprintf(p, "--b--\n");
	ms_message_limits_default(&limits);
	limits.max_parts = 10;
	c = parse_limited(msg, (size_t)(p - msg), &limits);
	ck_assert_uint_lt(c.max_part, 10);
	ck_assert_msg(strstr(c.out, "TEXT |part1\n") != NULL, "%.3000s", c.out);
	expect_no_piece(c, "part150");
	expect_piece(c, "META form|truncated");
	free(c.out);
	free(msg);
}
END_TEST

START_TEST(test_depth_limit)
{
	struct ms_message_limits limits;
	struct collect c;
	char *msg = malloc(100 * 80 + 256), *p = msg;
	int i;

	ck_assert_ptr_nonnull(msg);
	for (i = 0; i < 100; i++)
		p += sprintf(p, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	p += sprintf(p, "Content-Type: text/plain\n\ndeep text\n");
	ms_message_limits_default(&limits);
	c = parse_limited(msg, (size_t)(p - msg), &limits);
	ck_assert_uint_le(c.max_depth, limits.max_depth + 1);
	expect_no_piece(c, "deep text");
	free(c.out);
	free(msg);
}
END_TEST

START_TEST(test_byte_limit)
{
	struct ms_message_limits limits;
	struct collect c;
	const char *msg = "Subject: x\n\nfirst second third\n";

	ms_message_limits_default(&limits);
	limits.max_bytes = 17; /* the header and "first" */
	c = parse_limited(msg, strlen(msg), &limits);
	expect_piece(c, "TEXT |first");
	expect_no_piece(c, "second");
	expect_piece(c, "META form|truncated");
	free(c.out);
}
END_TEST

START_TEST(test_broken_mime)
{
	static const char *const msgs[] = {
	        "",
	        "\n",
	        "no header at all",
	        "Content-Type: multipart/mixed; boundary=\n\n--\n--\n",
	        "Content-Type: multipart/mixed\n\n--x\nContent-Type: text/plain\n\nlost boundary\n",
	        "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!!====@@@@\n",
	        "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=\n=4",
	        "Content-Type: text/html\n\n<a href=\"http://x<<<<&#xD800;&#99999999999;&;&",
	        "Content-Type: message/rfc822\n\n",
	        "Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: inner\n",
	        "From: <<<@@@>>>,,,;;; \"\n",
	        "Subject: =?utf-8?B?====?= =?x?Q?=FF?= =?\n",
	};
	struct collect c;
	size_t i;

	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		c = parse(msgs[i]);
		/* the message's form is reported whatever it is */
		ck_assert_msg(strstr(c.out, "META layout|") != NULL, "%zu: %s", i, c.out);
		free(c.out);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("message");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_plain);
	tcase_add_test(tc, test_text_pieces);
	tcase_add_test(tc, test_base64);
	tcase_add_test(tc, test_quoted_printable);
	tcase_add_test(tc, test_rfc2047);
	tcase_add_test(tc, test_charsets);
	tcase_add_test(tc, test_unknown_charset);
	tcase_add_test(tc, test_undeclared_windows_1252);
	tcase_add_test(tc, test_undeclared_long);
	tcase_add_test(tc, test_html);
	tcase_add_test(tc, test_multipart);
	tcase_add_test(tc, test_nul_bytes);
	tcase_add_test(tc, test_huge_line);
	tcase_add_test(tc, test_part_limit);
	tcase_add_test(tc, test_depth_limit);
	tcase_add_test(tc, test_byte_limit);
	tcase_add_test(tc, test_broken_mime);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
