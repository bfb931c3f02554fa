#ifndef MS_MESSAGE_H
#define MS_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>

/* One pass over a message with libdovecot's lib-mail, reported as a stream
 * of typed pieces so that the tokenizer never sees Dovecot's types. All text
 * is UTF-8 (8-bit text that declares no charset and is not UTF-8 read in
 * the first charset a text part declares, else windows-1252; other invalid
 * sequences replaced by U+FFFD) and may contain NULs:
 * always use the lengths. Pieces point into the parser's buffers and are
 * valid only during the callback. */

enum ms_piece_type {
	/* A header field. name: the field name as written; text: the value
	 * unfolded and RFC 2047 decoded. part > 0 for MIME part headers and
	 * the headers of attached messages. */
	MS_PIECE_HEADER,
	/* One mailbox of an address header (From, To, Cc, Reply-To, Sender,
	 * Return-Path...). name: the field name; text: "local@domain" (either
	 * side may be empty); display: the display name, decoded. */
	MS_PIECE_ADDRESS,
	/* The decoded text of a text part other than HTML: whole, or when
	 * long (16 KB or more) in pieces that each end after a whitespace byte
	 * (space, tab, CR, LF), so that no word is cut; continued is set on
	 * all but the first. */
	MS_PIECE_TEXT,
	/* The visible text of an HTML part (tags, scripts, styles and comments
	 * removed, entities decoded). */
	MS_PIECE_HTML_TEXT,
	/* A link target from HTML markup (href, src, action...), as written. */
	MS_PIECE_URL,
	/* A non-text part: name: its content type (lowercase); text: its file
	 * name ("" if none). */
	MS_PIECE_ATTACHMENT,
	/* A fact about the message's form. name: the kind, text: its value:
	 *   "type"      content type of a part, lowercase ("text/plain")
	 *   "charset"   declared charset of a text part, lowercase
	 *   "encoding"  content-transfer-encoding of a part that has one
	 *   "html"      a feature of HTML markup: "img", "form", "script",
	 *               "iframe", "hidden" (text styled invisible), "object"
	 *   "layout"    at the end: the MIME tree, e.g.
	 *               "multipart/alternative(text/plain,text/html)"
	 *   "form"      at the end: "html-only" (HTML without a plain text
	 *               alternative), "nul" (NUL bytes), "truncated" (limits hit),
	 *               "8bit-header" (raw 8-bit bytes in the top header) */
	MS_PIECE_META,
};

struct ms_piece {
	enum ms_piece_type type;
	unsigned int part;  /* MIME part number in message order; 0 = top */
	unsigned int depth; /* nesting depth of that part; 0 = top */
	const char *name;
	size_t name_len;
	const unsigned char *text;
	size_t text_len;
	const unsigned char *display; /* MS_PIECE_ADDRESS only */
	size_t display_len;
	bool continued; /* MS_PIECE_TEXT: goes on from the previous piece */
};

typedef void ms_piece_cb(const struct ms_piece *piece, void *context);

/* What is read of a message at most; the rest is ignored. Beyond these
 * bounds mail is not worth reading for classification, and they keep time
 * and memory linear and small whatever arrives. */
struct ms_message_limits {
	size_t max_bytes; /* of the raw message */
	unsigned int max_parts;
	unsigned int max_depth;
	size_t max_part_text;  /* decoded bytes kept of one text/HTML part */
	size_t max_total_text; /* decoded bytes kept of all parts */
};

void ms_message_limits_default(struct ms_message_limits *limits);

/* Parse msg (CRLF or LF line ends) and report its pieces in message order.
 * Malformed mail is parsed as far as it makes sense; never fails. Calls
 * ms_dovecot_init(). */
void ms_message_parse(const unsigned char *msg, size_t size, const struct ms_message_limits *limits,
                      ms_piece_cb *cb, void *context);

#endif
