/* Message parsing on libdovecot's lib-mail: message-parser walks the MIME
 * tree, message-decoder undoes transfer encodings and converts charsets to
 * UTF-8 (charsets iconv lacks are read as UTF-8 with U+FFFD replacements),
 * mail-html2text renders HTML and message-address splits address headers.
 * 8-bit text that declares no charset and is not UTF-8 is read in a
 * fallback charset (scan_message()). Everything leaves this file as struct
 * ms_piece. */
#include "lib.h"
#include "buffer.h"
#include "str.h"
#include "unichar.h"
#include "charset-utf8.h"
#include "istream.h"
#include "istream-chain.h"
#include "rfc822-parser.h"
#include "rfc2231-parser.h"
#include "message-parser.h"
#include "message-decoder.h"
#include "message-address.h"
#include "message-header-decode.h"
#include "mail-html2text.h"

#include <ctype.h>
#include <iconv.h>

#include "ms-dovecot.h"
#include "ms-html.h"
#include "ms-message.h"

#define MAX_ADDRESSES  50
#define MAX_LINKS      100
#define LAYOUT_MAX     200
#define PARAM_MAX      100
#define TEXT_PIECE_MIN (16 * 1024)
#define INPUT_SLICE    (16 * 1024)

enum part_kind {
	PART_CONTAINER, /* multipart/..., message/rfc822: children follow */
	PART_TEXT,
	PART_HTML,
	PART_OTHER, /* attachments: body not read */
};

/* What the parse learns ahead of reading a part, for text that declares no
 * charset: a second pass over the message, made only when it may matter. */
struct charset_scan {
	bool done;
	char fallback[PARAM_MAX]; /* "" if none could be opened */
	struct charset_translation *trans;
	buffer_t *invalid; /* per part index: 1 if its body is not UTF-8 */
	bool end_8bit_known;
	size_t end_8bit; /* offset after the last byte >= 0x80, 0 if none */
};

struct parse_ctx {
	const struct ms_message_limits *limits;
	const struct message_parser_settings *set;
	const unsigned char *msg;
	size_t size;
	ms_piece_cb *cb;
	void *context;
	struct message_decoder_context *decoder;
	struct charset_scan scan;

	struct message_part *part;
	unsigned int part_idx, nparts, depth;
	enum part_kind kind;
	char charset[PARAM_MAX], filename[PARAM_MAX], encoding[PARAM_MAX];
	enum message_cte cte; /* as the decoder reads Content-Transfer-Encoding */

	buffer_t *text;               /* decoded HTML part, or the unfinished word of a text part */
	size_t part_text, total_text; /* decoded bytes kept */
	unsigned int text_pieces;     /* of the current text part, emitted */
	unsigned int nlinks;

	char layout[LAYOUT_MAX + 8];
	size_t layout_len;
	unsigned int layout_depth;

	unsigned int ntext, nhtml;
	bool truncated, header_8bit;
};

static void
emit(struct parse_ctx *ctx, enum ms_piece_type type, const char *name, const void *text,
     size_t text_len)
{
	struct ms_piece piece;

	i_zero(&piece);
	piece.type = type;
	piece.part = ctx->part_idx;
	piece.depth = ctx->depth;
	piece.name = name;
	piece.name_len = name == NULL ? 0 : strlen(name);
	piece.text = text;
	piece.text_len = text_len;
	/* the tokenizer carries word pairs over from the previous text piece */
	piece.continued = type == MS_PIECE_TEXT && ctx->text_pieces++ > 0;
	ctx->cb(&piece, ctx->context);
}

static void
emit_meta(struct parse_ctx *ctx, const char *kind, const char *value)
{
	emit(ctx, MS_PIECE_META, kind, value, strlen(value));
}

static void
copy_lower(char *dest, size_t size, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < size && src[i] != '\0'; i++)
		dest[i] = i_tolower(src[i]);
	dest[i] = '\0';
}

/* The first token of a header value, lowercase: "base64". */
static void
copy_token(char *dest, size_t size, const unsigned char *value, size_t len)
{
	size_t i = 0, n = 0;

	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	for (; i < len && n + 1 < size; i++) {
		if (!i_isalnum(value[i]) && value[i] != '-' && value[i] != '_')
			break;
		dest[n++] = i_tolower(value[i]);
	}
	dest[n] = '\0';
}

static void
layout_append(struct parse_ctx *ctx, const char *s)
{
	size_t len = strlen(s);

	if (ctx->layout_len + len > LAYOUT_MAX) {
		if (ctx->layout_len < LAYOUT_MAX + 1)
			ctx->layout[ctx->layout_len++] = '+';
		ctx->layout_len = LAYOUT_MAX + 1;
		return;
	}
	memcpy(ctx->layout + ctx->layout_len, s, len);
	ctx->layout_len += len;
}

/* The MIME tree as one string: "multipart/mixed(text/plain,image/gif)". */
static void
layout_add_part(struct parse_ctx *ctx, const char *content_type)
{
	if (ctx->nparts > 1) {
		if (ctx->depth > ctx->layout_depth)
			layout_append(ctx, "(");
		else {
			for (; ctx->layout_depth > ctx->depth; ctx->layout_depth--)
				layout_append(ctx, ")");
			layout_append(ctx, ",");
		}
	}
	ctx->layout_depth = ctx->depth;
	layout_append(ctx, content_type);
}

static void
layout_finish(struct parse_ctx *ctx)
{
	for (; ctx->layout_depth > 0; ctx->layout_depth--)
		layout_append(ctx, ")");
	if (ctx->layout_len > LAYOUT_MAX)
		ctx->layout_len = LAYOUT_MAX + 1;
	ctx->layout[ctx->layout_len] = '\0';
}

static void
html_link(const unsigned char *url, size_t len, void *context)
{
	struct parse_ctx *ctx = context;

	if (ctx->nlinks++ < MAX_LINKS)
		emit(ctx, MS_PIECE_URL, NULL, url, len);
}

static void
finish_html(struct parse_ctx *ctx)
{
	struct mail_html2text *html;
	unsigned int features, bit;
	buffer_t *out;

	features = ms_html_scan(ctx->text->data, ctx->text->used, html_link, ctx);
	for (bit = 1; bit <= MS_HTML_OBJECT; bit <<= 1) {
		if ((features & bit) != 0)
			emit_meta(ctx, "html", ms_html_feature_name(bit));
	}
	out = buffer_create_dynamic(default_pool, ctx->text->used + 1);
	html = mail_html2text_init(0);
	/* mail_html2text_more() asserts on empty input */
	if (ctx->text->used > 0)
		mail_html2text_more(html, ctx->text->data, ctx->text->used, out);
	mail_html2text_deinit(&html);
	emit(ctx, MS_PIECE_HTML_TEXT, NULL, out->data, out->used);
	buffer_free(&out);
}

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Text goes to the callback as it is decoded, in pieces that end after a
 * whitespace byte, where no word or URL goes on: the tokens are those of
 * the whole text, and a long part is never held whole (a 200 KB one cost
 * the delivery daemon 256 KB more). Only an unfinished word waits. A short
 * part (most mail) still comes whole. */
static void
text_block(struct parse_ctx *ctx, const unsigned char *data, size_t size)
{
	size_t first = 0, last = size;

	if (ctx->text->used + size < TEXT_PIECE_MIN) {
		buffer_append(ctx->text, data, size);
		return;
	}
	while (last > 0 && !is_space(data[last - 1]))
		last--;
	if (last == 0) {
		buffer_append(ctx->text, data, size);
		return;
	}
	if (ctx->text->used > 0) {
		while (!is_space(data[first]))
			first++;
		buffer_append(ctx->text, data, ++first);
		emit(ctx, MS_PIECE_TEXT, NULL, ctx->text->data, ctx->text->used);
		buffer_set_used_size(ctx->text, 0);
	}
	if (last > first)
		emit(ctx, MS_PIECE_TEXT, NULL, data + first, last - first);
	buffer_append(ctx->text, data + last, size - last);
}

static void
finish_part(struct parse_ctx *ctx)
{
	if (ctx->part == NULL)
		return;
	if (ctx->kind == PART_TEXT && (ctx->text->used > 0 || ctx->text_pieces == 0))
		emit(ctx, MS_PIECE_TEXT, NULL, ctx->text->data, ctx->text->used);
	else if (ctx->kind == PART_HTML)
		finish_html(ctx);
	ctx->total_text += ctx->part_text;
	ctx->part_text = 0;
	ctx->text_pieces = 0;
	buffer_set_used_size(ctx->text, 0);
	ctx->kind = PART_OTHER;
}

static unsigned int
part_depth(const struct message_part *part)
{
	unsigned int depth = 0;

	for (; part->parent != NULL; part = part->parent)
		depth++;
	return depth;
}

/* A part's number, in the order a pass first meets the parts (the part's
 * context keeps it): the charset scan's numbers are the parse's. *new_r
 * says whether the part is met for the first time. */
static unsigned int
part_number(struct message_part *part, unsigned int *nparts, bool *new_r)
{
	*new_r = part->context == NULL;
	if (*new_r)
		part->context = POINTER_CAST(++*nparts);
	return POINTER_CAST_TO(part->context, unsigned int) - 1;
}

static void
begin_part(struct parse_ctx *ctx, struct message_part *part)
{
	bool new_part;

	finish_part(ctx);
	ctx->part = part;
	ctx->part_idx = part_number(part, &ctx->nparts, &new_part);
	ctx->depth = part_depth(part);
	if (!new_part) {
		/* back in a parent after its children: nothing new */
		ctx->kind = PART_CONTAINER;
		return;
	}
	ctx->kind = PART_OTHER;
	ctx->charset[0] = ctx->filename[0] = ctx->encoding[0] = '\0';
	ctx->cte = MESSAGE_CTE_78BIT;
}

/* Content-Type and Content-Disposition parameters this parser uses, into
 * buffers of PARAM_MAX bytes (filename may be NULL). */
static void
parse_params(const struct message_header_line *hdr, bool content_type, char *charset,
             char *filename)
{
	struct rfc822_parser_context parser;
	const char *const *results;
	string_t *str = t_str_new(64);

	rfc822_parser_init(&parser, hdr->full_value, hdr->full_value_len, NULL);
	rfc822_skip_lwsp(&parser);
	if ((content_type ? rfc822_parse_content_type(&parser, str)
	                  : rfc822_parse_mime_token(&parser, str)) >= 0) {
		(void)rfc2231_parse(&parser, &results);
		for (; *results != NULL; results += 2) {
			if (content_type && strcasecmp(results[0], "charset") == 0)
				copy_lower(charset, PARAM_MAX, results[1]);
			else if (filename != NULL &&
			         strcasecmp(results[0], content_type ? "name" : "filename") == 0)
				i_strocpy(filename, results[1], PARAM_MAX);
		}
	}
	rfc822_parser_deinit(&parser);
}

static struct istream *input_in_slices(const unsigned char *msg, size_t size);

/* Names mail clients give charsets that iconv knows by another: Outlook's
 * Korean label above all, on most Korean mail it sends. Read as declared,
 * the text would be UTF-8 with every other byte replaced. */
static const char *const charset_aliases[][2] = {
        {"ks_c_5601-1987", "cp949"},  {"ks_c_5601-1989", "cp949"},  {"ks_c_5601", "cp949"},
        {"chinesebig5", "big5"},      {"x-x-big5", "big5"},         {"x-gbk", "gbk"},
        {"gb2312_charset", "gb2312"}, {"x-sjis", "shift_jis"},      {"x-euc-jp", "euc-jp"},
        {"x-euc-tw", "euc-tw"},       {"x-mac-roman", "macintosh"}, {"iso-8859-8-i", "iso-8859-8"},
};

/* The name iconv knows a declared charset by: itself unless an alias. */
static const char *
charset_read_name(const char *charset)
{
	size_t i;

	for (i = 0; i < N_ELEMENTS(charset_aliases); i++) {
		if (strcmp(charset, charset_aliases[i][0]) == 0)
			return charset_aliases[i][1];
	}
	return charset;
}

/* Text under these says nothing of its 8-bit bytes. */
static bool
charset_undeclared(const char *charset)
{
	return charset[0] == '\0' || strcmp(charset, "us-ascii") == 0 ||
	       strcmp(charset, "ascii") == 0;
}

/* A charset the message's undeclared text may be read in: an 8-bit one
 * (UTF-8 and ASCII would read nothing new, UTF-16 and UTF-7 not even the
 * ASCII the same), named so that it goes unquoted into a Content-Type. */
static bool
fallback_candidate(const char *charset)
{
	size_t i;

	if (charset_undeclared(charset) || strncmp(charset, "utf", 3) == 0 ||
	    strncmp(charset, "ucs", 3) == 0 || strncmp(charset, "unicode", 7) == 0)
		return FALSE;
	for (i = 0; charset[i] != '\0'; i++) {
		if (!i_isalnum(charset[i]) && strchr("-_.+", charset[i]) == NULL)
			return FALSE;
	}
	return TRUE;
}

/* Whether a body is UTF-8 as the decoder judges it, a block at a time: a
 * character cut by a block's end waits for the next block. One cut by the
 * end of the part is dropped by the decoder, not replaced: not counted. */
struct utf8_check {
	unsigned char pending[8];
	size_t pending_len;
};

static bool
utf8_check_more(struct utf8_check *chk, const unsigned char *data, size_t size)
{
	size_t need, n, pos;

	if (chk->pending_len > 0) {
		need = uni_utf8_char_bytes(chk->pending[0]) - chk->pending_len;
		n = I_MIN(need, size);
		memcpy(chk->pending + chk->pending_len, data, n);
		chk->pending_len += n;
		data += n;
		size -= n;
		if (n < need)
			return TRUE;
		if (!uni_utf8_data_is_valid(chk->pending, chk->pending_len))
			return FALSE;
		chk->pending_len = 0;
	}
	(void)uni_utf8_partial_strlen_n(data, size, &pos);
	if (!uni_utf8_data_is_valid(data, pos))
		return FALSE;
	memcpy(chk->pending, data + pos, size - pos);
	chk->pending_len = size - pos;
	return TRUE;
}

struct scan_state {
	struct message_decoder_context *decoder;
	struct message_part *part;
	unsigned int idx, nparts;
	char charset[PARAM_MAX];  /* of the current part */
	char declared[PARAM_MAX]; /* the first fallback candidate */
	bool check;               /* the current part's body is being checked */
	struct utf8_check utf8;
};

static void
scan_part_body(struct scan_state *st, struct message_block *raw)
{
	struct message_part *part = raw->part;
	const char *read_name = charset_read_name(st->charset);
	struct message_block out;

	if ((part->flags & (MESSAGE_PART_FLAG_MULTIPART | MESSAGE_PART_FLAG_MESSAGE_RFC822)) != 0 ||
	    (part->flags & MESSAGE_PART_FLAG_TEXT) == 0)
		return;
	if (st->declared[0] == '\0' && fallback_candidate(read_name))
		i_strocpy(st->declared, read_name, sizeof(st->declared));
	if (!charset_undeclared(st->charset))
		return;
	/* The decoder returns a body transfer-decoded but unconverted only
	 * for a part that is not text; this pass alone reads this part tree,
	 * and it gave the decoder no Content-Type. */
	part->flags &= ENUM_NEGATE(MESSAGE_PART_FLAG_TEXT);
	(void)message_decoder_decode_next_block(st->decoder, raw, &out);
	st->check = TRUE;
	i_zero(&st->utf8);
}

static void
scan_block(struct parse_ctx *ctx, struct scan_state *st, struct message_block *raw)
{
	static const unsigned char one = 1;
	struct message_header_line *hdr = raw->hdr;
	struct message_block out;

	if (hdr != NULL) {
		if (hdr->eoh)
			return;
		if (strcasecmp(hdr->name, "Content-Transfer-Encoding") == 0)
			(void)message_decoder_decode_next_block(st->decoder, raw, &out);
		else if (strcasecmp(hdr->name, "Content-Type") == 0 && !hdr->continues)
			parse_params(hdr, TRUE, st->charset, NULL);
	} else if (raw->size == 0)
		scan_part_body(st, raw);
	else if (st->check && message_decoder_decode_next_block(st->decoder, raw, &out) &&
	         !utf8_check_more(&st->utf8, out.data, out.size)) {
		buffer_write(ctx->scan.invalid, st->idx, &one, 1);
		st->check = FALSE;
	}
}

/* The converter for the fallback charset: the first one a text part of the
 * message declares (a raw Subject is usually in its body's charset), else
 * windows-1252, in which every byte is a character and which undeclared
 * Western mail is written in. Held open to the message's end, it also keeps
 * the decoder from loading its module a second time. */
static void
scan_open_fallback(struct charset_scan *scan, const char *declared)
{
	if (declared[0] != '\0' && charset_to_utf8_begin(declared, NULL, &scan->trans) == 0)
		i_strocpy(scan->fallback, declared, sizeof(scan->fallback));
	else if (charset_to_utf8_begin("windows-1252", NULL, &scan->trans) == 0)
		i_strocpy(scan->fallback, "windows-1252", sizeof(scan->fallback));
	else
		scan->trans = NULL;
}

/* The decoder reads a text part that declares no charset (or us-ascii) as
 * UTF-8, replacing each invalid byte with U+FFFD, and so loses the whole
 * text of undeclared 8-bit mail. Whether a part's body is UTF-8 is known
 * only once it is read, and the decoder chooses its charset before, so a
 * second pass reads the message ahead: which undeclared parts are not
 * UTF-8, and the fallback charset. Made only for messages that may need
 * it, at most once. */
static void
scan_message(struct parse_ctx *ctx)
{
	struct message_parser_ctx *parser;
	struct message_part *parts;
	struct message_block raw;
	struct scan_state st;
	struct istream *input;
	bool new_part;
	pool_t pool;

	i_zero(&st);
	ctx->scan.done = TRUE;
	ctx->scan.invalid = buffer_create_dynamic(default_pool, 64);
	pool = pool_alloconly_create("ms charset scan", 4096);
	input = input_in_slices(ctx->msg, ctx->size);
	parser = message_parser_init(pool, input, ctx->set);
	st.decoder = message_decoder_init(NULL, MESSAGE_DECODER_FLAG_RETURN_BINARY);
	while (message_parser_parse_next_block(parser, &raw) > 0) {
		if (raw.part != st.part) {
			st.part = raw.part;
			st.check = FALSE;
			st.idx = part_number(st.part, &st.nparts, &new_part);
			if (new_part)
				st.charset[0] = '\0';
		}
		T_BEGIN
		{
			scan_block(ctx, &st, &raw);
		}
		T_END;
	}
	message_parser_deinit(&parser, &parts);
	message_decoder_deinit(&st.decoder);
	i_stream_unref(&input);
	pool_unref(&pool);
	scan_open_fallback(&ctx->scan, st.declared);
}

static bool
fallback_ready(struct parse_ctx *ctx)
{
	if (!ctx->scan.done)
		scan_message(ctx);
	return ctx->scan.trans != NULL;
}

/* The offset after the last byte >= 0x80 in data, 0 if none: eight bytes
 * at a time, since most mail has none. */
static size_t
end_of_8bit(const unsigned char *data, size_t size)
{
	uint64_t word;

	for (; size >= sizeof(word); size -= sizeof(word)) {
		memcpy(&word, data + size - sizeof(word), sizeof(word));
		if ((word & 0x8080808080808080ULL) != 0)
			break;
	}
	while (size > 0 && data[size - 1] < 0x80)
		size--;
	return size;
}

/* Raw header bytes that are not UTF-8. */
static bool
needs_fallback(const unsigned char *value, size_t len)
{
	return end_of_8bit(value, len) > 0 && !uni_utf8_data_is_valid(value, len);
}

/* A header value or display name, RFC 2047 decoded. In the top header, raw
 * 8-bit bytes that are not UTF-8 are read in the fallback charset, where
 * the decoder would replace them; encoded words are ASCII and come through
 * the conversion as they were. */
static void
decode_header_value(struct parse_ctx *ctx, const unsigned char *value, size_t len, buffer_t *dest)
{
	buffer_t *converted;

	if (ctx->part_idx != 0 || !needs_fallback(value, len) || !fallback_ready(ctx)) {
		message_header_decode_utf8(value, len, dest, NULL);
		return;
	}
	converted = t_buffer_create(len * 2 + 16);
	charset_to_utf8_reset(ctx->scan.trans);
	(void)charset_to_utf8(ctx->scan.trans, value, &len, converted);
	message_header_decode_utf8(converted->data, converted->used, dest, NULL);
}

/* Whether the decoded body may have 8-bit bytes: encoded, or raw 8-bit
 * bytes after its start (found once per message, from the end). */
static bool
body_may_be_8bit(struct parse_ctx *ctx, const struct message_part *part)
{
	if (ctx->cte == MESSAGE_CTE_QP || ctx->cte == MESSAGE_CTE_BASE64)
		return TRUE;
	if (ctx->cte == MESSAGE_CTE_UNKNOWN)
		return FALSE; /* the decoder skips the body */
	if (!ctx->scan.end_8bit_known) {
		ctx->scan.end_8bit = end_of_8bit(ctx->msg, ctx->size);
		ctx->scan.end_8bit_known = TRUE;
	}
	return ctx->scan.end_8bit > part->physical_pos + part->header_size.physical_size;
}

static bool
body_needs_fallback(struct parse_ctx *ctx, const struct message_part *part)
{
	if (!charset_undeclared(ctx->charset) || !body_may_be_8bit(ctx, part) ||
	    !fallback_ready(ctx))
		return FALSE;
	return ctx->part_idx < ctx->scan.invalid->used &&
	       ((const unsigned char *)ctx->scan.invalid->data)[ctx->part_idx] != 0;
}

/* The charset to give the decoder for a text part's body over the one the
 * part declares: the fallback for undeclared text that is not UTF-8, the
 * name iconv knows for an alias; NULL when the declaration serves. */
static const char *
body_charset(struct parse_ctx *ctx, const struct message_part *part)
{
	const char *read_name = charset_read_name(ctx->charset);

	if (body_needs_fallback(ctx, part))
		return ctx->scan.fallback;
	return read_name != ctx->charset ? read_name : NULL;
}

static void
decoder_feed_header(struct parse_ctx *ctx, struct message_part *part, const char *name,
                    const char *value)
{
	struct message_header_line hdr;
	struct message_block block, out;

	i_zero(&hdr);
	hdr.name = name;
	hdr.name_len = strlen(name);
	hdr.value = hdr.full_value = (const unsigned char *)value;
	hdr.value_len = hdr.full_value_len = strlen(value);
	i_zero(&block);
	block.part = part;
	block.hdr = &hdr;
	(void)message_decoder_decode_next_block(ctx->decoder, &block, &out);
}

/* The decoder keeps the first Content-Type it is given: it forgets the
 * part's header, then is given one that names charset (the fallback, or
 * the name iconv knows the declared one by) and the part's transfer
 * encoding again. */
static void
decoder_use_charset(struct parse_ctx *ctx, struct message_part *part, const char *charset)
{
	static const char *const cte_names[] = {
	        [MESSAGE_CTE_UNKNOWN] = "x-unknown", [MESSAGE_CTE_78BIT] = "7bit",
	        [MESSAGE_CTE_BINARY] = "binary",     [MESSAGE_CTE_QP] = "quoted-printable",
	        [MESSAGE_CTE_BASE64] = "base64",
	};

	message_decoder_decode_reset(ctx->decoder);
	decoder_feed_header(ctx, part, "Content-Type",
	                    t_strconcat("text/plain; charset=", charset, NULL));
	decoder_feed_header(ctx, part, "Content-Transfer-Encoding", cte_names[ctx->cte]);
}

static void
parse_addresses(struct parse_ctx *ctx, const struct message_header_line *raw,
                const struct message_header_line *decoded)
{
	struct message_address *addr;
	const char *spec;
	string_t *display = t_str_new(64);

	addr = message_address_parse(pool_datastack_create(), raw->full_value, raw->full_value_len,
	                             MAX_ADDRESSES, 0);
	for (; addr != NULL; addr = addr->next) {
		if (addr->mailbox == NULL || addr->domain == NULL)
			continue; /* group syntax */
		spec = t_strconcat(addr->mailbox, "@", addr->domain, NULL);
		str_truncate(display, 0);
		if (addr->name != NULL) {
			decode_header_value(ctx, (const unsigned char *)addr->name,
			                    strlen(addr->name), display);
		}
		struct ms_piece piece = {
		        .type = MS_PIECE_ADDRESS,
		        .part = ctx->part_idx,
		        .depth = ctx->depth,
		        .name = decoded->name,
		        .name_len = decoded->name_len,
		        .text = (const unsigned char *)spec,
		        .text_len = strlen(spec),
		        .display = str_data(display),
		        .display_len = str_len(display),
		};
		ctx->cb(&piece, ctx->context);
	}
}

static bool
is_address_header(const char *name)
{
	return message_header_is_address(name) || strcasecmp(name, "Return-Path") == 0;
}

static void
header_line(struct parse_ctx *ctx, struct message_block *raw)
{
	struct message_block out;
	struct message_header_line *hdr = raw->hdr;
	buffer_t *decoded;

	if (hdr->eoh)
		return;
	if (ctx->part_idx == 0 && end_of_8bit(hdr->value, hdr->value_len) > 0)
		ctx->header_8bit = TRUE;
	if (!message_decoder_decode_next_block(ctx->decoder, raw, &out) || out.hdr == NULL)
		return; /* a continued line: the whole field comes with its last */
	if (strcasecmp(hdr->name, "Content-Type") == 0)
		parse_params(hdr, TRUE, ctx->charset, ctx->filename);
	else if (strcasecmp(hdr->name, "Content-Disposition") == 0)
		parse_params(hdr, FALSE, NULL, ctx->filename);
	else if (strcasecmp(hdr->name, "Content-Transfer-Encoding") == 0) {
		copy_token(ctx->encoding, sizeof(ctx->encoding), hdr->full_value,
		           hdr->full_value_len);
		ctx->cte = message_decoder_parse_cte(hdr);
	}
	if (ctx->part_idx == 0 && needs_fallback(hdr->full_value, hdr->full_value_len)) {
		/* the decoder replaced the raw bytes: decode the value again */
		decoded = t_buffer_create(hdr->full_value_len * 2);
		decode_header_value(ctx, hdr->full_value, hdr->full_value_len, decoded);
		emit(ctx, MS_PIECE_HEADER, hdr->name, decoded->data, decoded->used);
	} else
		emit(ctx, MS_PIECE_HEADER, hdr->name, out.hdr->full_value, out.hdr->full_value_len);
	if (is_address_header(hdr->name))
		parse_addresses(ctx, hdr, out.hdr);
}

static void
end_of_headers(struct parse_ctx *ctx, struct message_block *raw)
{
	struct message_block out;
	const char *content_type, *charset;
	struct message_part *part = raw->part;

	content_type = message_decoder_current_content_type(ctx->decoder);
	if ((part->flags & MESSAGE_PART_FLAG_MESSAGE_RFC822) != 0)
		content_type = "message/rfc822";
	else if (content_type == NULL || (part->flags & MESSAGE_PART_FLAG_IS_MIME) == 0)
		content_type = "text/plain";
	content_type = t_str_lcase(content_type);

	if ((part->flags & (MESSAGE_PART_FLAG_MULTIPART | MESSAGE_PART_FLAG_MESSAGE_RFC822)) != 0)
		ctx->kind = PART_CONTAINER;
	else if ((part->flags & MESSAGE_PART_FLAG_TEXT) == 0)
		ctx->kind = PART_OTHER;
	else if (mail_html2text_content_type_match(content_type)) {
		ctx->kind = PART_HTML;
		ctx->nhtml++;
	} else {
		ctx->kind = PART_TEXT;
		ctx->ntext++;
	}
	if (ctx->kind != PART_CONTAINER && ctx->depth > ctx->limits->max_depth)
		ctx->kind = PART_OTHER;

	layout_add_part(ctx, content_type);
	emit_meta(ctx, "type", content_type);
	if (ctx->kind == PART_TEXT || ctx->kind == PART_HTML)
		emit_meta(ctx, "charset", ctx->charset[0] == '\0' ? "none" : ctx->charset);
	if (ctx->encoding[0] != '\0')
		emit_meta(ctx, "encoding", ctx->encoding);
	if (ctx->kind == PART_OTHER || ctx->filename[0] != '\0')
		emit(ctx, MS_PIECE_ATTACHMENT, content_type, ctx->filename, strlen(ctx->filename));
	if ((ctx->kind == PART_TEXT || ctx->kind == PART_HTML) &&
	    (charset = body_charset(ctx, part)) != NULL)
		decoder_use_charset(ctx, part, charset);
	/* lets the decoder choose the charset translation for the body */
	(void)message_decoder_decode_next_block(ctx->decoder, raw, &out);
}

static void
body_block(struct parse_ctx *ctx, struct message_block *raw)
{
	struct message_block out;
	size_t room;

	if (ctx->kind != PART_TEXT && ctx->kind != PART_HTML)
		return;
	if ((raw->part->flags & MESSAGE_PART_FLAG_OVERFLOW) != 0) {
		/* the unparsed rest of a message with too many parts */
		ctx->truncated = TRUE;
		return;
	}
	if (!message_decoder_decode_next_block(ctx->decoder, raw, &out) || out.size == 0)
		return;
	room = I_MIN(ctx->limits->max_part_text - I_MIN(ctx->part_text, ctx->limits->max_part_text),
	             ctx->limits->max_total_text -
	                     I_MIN(ctx->total_text + ctx->part_text, ctx->limits->max_total_text));
	if (out.size > room) {
		ctx->truncated = TRUE;
		out.size = room;
	}
	ctx->part_text += out.size;
	if (ctx->kind == PART_TEXT)
		text_block(ctx, out.data, out.size);
	else
		buffer_append(ctx->text, out.data, out.size);
}

static void
parse_blocks(struct parse_ctx *ctx, struct message_parser_ctx *parser)
{
	struct message_block raw;

	while (message_parser_parse_next_block(parser, &raw) > 0) {
		if (raw.part != ctx->part)
			begin_part(ctx, raw.part);
		T_BEGIN
		{
			if (raw.hdr != NULL)
				header_line(ctx, &raw);
			else if (raw.size == 0)
				end_of_headers(ctx, &raw);
			else
				body_block(ctx, &raw);
		}
		T_END;
	}
	finish_part(ctx);
}

static bool
parts_overflowed(const struct message_part *part)
{
	for (; part != NULL; part = part->next) {
		if ((part->flags & MESSAGE_PART_FLAG_OVERFLOW) != 0 ||
		    parts_overflowed(part->children))
			return TRUE;
	}
	return FALSE;
}

static void
finish_message(struct parse_ctx *ctx, struct message_part *parts, bool has_nuls)
{
	bool overflow = parts_overflowed(parts);

	ctx->part_idx = 0;
	ctx->depth = 0;
	layout_finish(ctx);
	emit_meta(ctx, "layout", ctx->layout);
	if (ctx->nhtml > 0 && ctx->ntext == 0)
		emit_meta(ctx, "form", "html-only");
	if (has_nuls)
		emit_meta(ctx, "form", "nul");
	if (ctx->truncated || overflow || ctx->nparts >= ctx->limits->max_parts)
		emit_meta(ctx, "form", "truncated");
	if (ctx->header_8bit)
		emit_meta(ctx, "form", "8bit-header");
}

/* glibc loads a charset's converter module on iconv_open() and unloads it
 * on the last iconv_close(): per message, that was a third of the parse
 * time. Holding one converter open keeps its module loaded for the life of
 * the process, but costs resident memory: the module's pages and a 32 KB
 * buffer, 50-130 KB for each CJK one (20 charsets pinned were 1 MB of the
 * delivery daemon's peak RSS). Only the Western charsets are pinned: in the
 * corpus they are 96% of the parts that need converting. */
static const char *const pinned_charsets[] = {
        "ISO-8859-1",
        "ISO-8859-15",
        "WINDOWS-1252",
};
static iconv_t pinned[N_ELEMENTS(pinned_charsets)];
static bool pinned_done;

static void
unpin_charset_modules(void)
{
	size_t i;

	for (i = 0; i < N_ELEMENTS(pinned); i++) {
		if (pinned[i] != (iconv_t)-1)
			(void)iconv_close(pinned[i]);
	}
}

static void
pin_charset_modules(void)
{
	size_t i;

	if (pinned_done)
		return;
	pinned_done = TRUE;
	for (i = 0; i < N_ELEMENTS(pinned); i++)
		pinned[i] = iconv_open("UTF-8", pinned_charsets[i]);
	(void)atexit(unpin_charset_modules);
}

/* At least INPUT_SLICE bytes, up to a line end that is not a
 * quoted-printable soft break: text never continues across a slice, so
 * the decoder sees no character cut in two (whole or in slices, the
 * message then decodes the same, bad bytes included). */
static size_t
slice_length(const unsigned char *data, size_t size)
{
	const unsigned char *nl;
	size_t pos = I_MIN(INPUT_SLICE, size);

	while (pos < size && (nl = memchr(data + pos, '\n', size - pos)) != NULL) {
		pos = (size_t)(nl - data) + 1;
		if (pos < 2 || data[pos - 2] != '=')
			if (pos < 3 || data[pos - 2] != '\r' || data[pos - 3] != '=')
				return pos;
	}
	return size;
}

/* The message as a chain of 16 KB slices rather than one block: the
 * parser then hands the decoder a slice at a time, and what the decoder
 * makes of a body (base64 undone, charset converted, invalid UTF-8
 * replaced) is at most a slice too, where one block meant a copy of the
 * whole body. Nothing is copied unless a line spans two slices; the
 * buffer may hold the whole message, so no line is ever cut. */
static struct istream *
input_in_slices(const unsigned char *msg, size_t size)
{
	struct istream_chain *chain;
	struct istream *input, *slice;
	size_t off, len;

	input = i_stream_create_chain(&chain, size + 1);
	for (off = 0; off < size; off += len) {
		len = slice_length(msg + off, size - off);
		slice = i_stream_create_from_data(msg + off, len);
		i_stream_chain_append(chain, slice);
		i_stream_unref(&slice);
	}
	i_stream_chain_append_eof(chain);
	return input;
}

void
ms_message_limits_default(struct ms_message_limits *limits)
{
	limits->max_bytes = 1024 * 1024;
	limits->max_parts = 64;
	limits->max_depth = 8;
	limits->max_part_text = 256 * 1024;
	limits->max_total_text = 512 * 1024;
}

void
ms_message_parse(const unsigned char *msg, size_t size, const struct ms_message_limits *limits,
                 ms_piece_cb *cb, void *context)
{
	struct message_parser_settings set;
	struct message_parser_ctx *parser;
	struct message_part *parts;
	struct istream *input;
	struct parse_ctx ctx;
	pool_t pool;

	ms_dovecot_init();
	pin_charset_modules();
	i_zero(&ctx);
	ctx.limits = limits;
	ctx.cb = cb;
	ctx.context = context;
	if (size > limits->max_bytes) {
		size = limits->max_bytes;
		ctx.truncated = TRUE;
	}
	i_zero(&set);
	set.hdr_flags = MESSAGE_HEADER_PARSER_FLAG_CLEAN_ONELINE |
	                MESSAGE_HEADER_PARSER_FLAG_SKIP_INITIAL_LWSP;
	set.max_nested_mime_parts = limits->max_depth + 1;
	set.max_total_mime_parts = limits->max_parts;
	set.all_headers_max_size = limits->max_bytes;

	pool = pool_alloconly_create("ms message parts", 4096);
	input = input_in_slices(msg, size);
	parser = message_parser_init(pool, input, &set);
	ctx.decoder = message_decoder_init(NULL, 0);
	ctx.text = buffer_create_dynamic(default_pool, 4096);
	ctx.msg = msg;
	ctx.size = size;
	ctx.set = &set;

	parse_blocks(&ctx, parser);
	message_parser_deinit(&parser, &parts);
	finish_message(&ctx, parts, memchr(msg, '\0', size) != NULL);

	if (ctx.scan.trans != NULL)
		charset_to_utf8_end(&ctx.scan.trans);
	if (ctx.scan.invalid != NULL)
		buffer_free(&ctx.scan.invalid);
	buffer_free(&ctx.text);
	message_decoder_deinit(&ctx.decoder);
	i_stream_unref(&input);
	pool_unref(&pool);
}
