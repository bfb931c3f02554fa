#include "ms-words.h"

#include <stdint.h>
#include <string.h>

enum char_class {
	C_SEP = 0, /* ends a word (what ascii_class leaves unset) */
	C_WORD,    /* letter or digit */
	C_JOIN,    /* . - ' _ : part of a word only between word characters */
	C_IGNORE,  /* zero-width, soft hyphen: skipped, the word goes on */
	C_CJK,     /* of a script written without spaces: ideographs, kana, Thai... */
};

struct uchar {
	uint32_t cp;
	size_t len; /* bytes consumed */
};

/* Decode one UTF-8 character; invalid bytes come back as U+FFFD, length 1. */
static struct uchar
utf8_get(const unsigned char *p, size_t size)
{
	struct uchar u = {0xFFFD, 1};
	size_t n, i;
	uint32_t cp, min;

	if (p[0] < 0x80) {
		u.cp = p[0];
		return u;
	}
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		n = 2;
		cp = p[0] & 0x1F;
		min = 0x80;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		n = 3;
		cp = p[0] & 0x0F;
		min = 0x800;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		n = 4;
		cp = p[0] & 0x07;
		min = 0x10000;
	} else
		return u;
	if (n > size)
		return u;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return u;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return u;
	u.cp = cp;
	u.len = n;
	return u;
}

static uint32_t
fold_case(uint32_t cp)
{
	if (cp >= 'A' && cp <= 'Z')
		return cp + 32;
	if (cp < 0xC0)
		return cp;
	if (cp <= 0xDE && cp != 0xD7)
		return cp + 32;
	if (cp >= 0x100 && cp <= 0x17F) {
		/* Latin Extended-A pairs upper/lower; the odd runs start at
		 * U+0139 and U+0179 */
		bool odd_upper = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E);
		if (cp == 0x130 || cp == 0x131 || cp == 0x138 || cp == 0x149 || cp == 0x17F)
			return cp;
		if (odd_upper ? (cp & 1) != 0 : (cp & 1) == 0)
			return cp + 1;
		return cp;
	}
	if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2)
		return cp + 32;
	if (cp >= 0x410 && cp <= 0x42F)
		return cp + 32;
	if (cp >= 0x400 && cp <= 0x40F)
		return cp + 80;
	return cp;
}

/* The class of each ASCII character: a lookup, since every byte of the
 * text is classified. */
static const unsigned char ascii_class[128] = {
        ['0' ... '9'] = C_WORD, ['A' ... 'Z'] = C_WORD, ['a' ... 'z'] = C_WORD, ['.'] = C_JOIN,
        ['-'] = C_JOIN,         ['\''] = C_JOIN,        ['_'] = C_JOIN,
};

static enum char_class
classify_ascii(unsigned char c)
{
	return (enum char_class)ascii_class[c];
}

static enum char_class
classify(uint32_t cp)
{
	if (cp < 0x80)
		return classify_ascii((unsigned char)cp);
	if (cp == 0xAD || (cp >= 0x200B && cp <= 0x200D) || cp == 0x2060 || cp == 0xFEFF ||
	    (cp >= 0xFE00 && cp <= 0xFE0F))
		return C_IGNORE;
	if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7 || cp == 0xFFFD)
		return C_SEP;
	if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
	    (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0x1F000 && cp <= 0x1FAFF) ||
	    (cp >= 0xE000 && cp <= 0xF8FF))
		return C_SEP;
	if ((cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
	    (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF))
		return C_CJK;
	/* Thai, Lao, Myanmar and Khmer put no spaces between words either: a
	 * sentence would be one word, cut at MS_WORD_MAX */
	if ((cp >= 0x0E00 && cp <= 0x0EFF) || (cp >= 0x1000 && cp <= 0x109F) ||
	    (cp >= 0x1780 && cp <= 0x17FF))
		return C_CJK;
	return C_WORD;
}

/* Fullwidth ASCII (U+FF01..U+FF5E) is ASCII dressed up to dodge filters. */
static uint32_t
fold_width(uint32_t cp)
{
	return cp >= 0xFF01 && cp <= 0xFF5E ? cp - 0xFF01 + 0x21 : cp;
}

static size_t
utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Most text is ASCII: a byte below 0x80 is its own character, which
 * neither width nor case folding of another script changes. */
static inline struct uchar
next_char(const unsigned char *text, size_t size, size_t pos, enum char_class *cls)
{
	struct uchar u;

	if (text[pos] < 0x80) {
		u.cp = text[pos];
		u.len = 1;
		*cls = classify_ascii(text[pos]);
		return u;
	}
	u = utf8_get(text + pos, size - pos);
	u.cp = fold_width(u.cp);
	*cls = classify(u.cp);
	return u;
}

static inline void
word_add(struct ms_word *word, uint32_t cp)
{
	char buf[4];
	size_t n;

	cp = fold_case(cp);
	word->nchars++;
	if (cp >= '0' && cp <= '9')
		word->has_digit = true;
	else if (cp != '.' && cp != '-' && cp != '\'' && cp != '_' && cp != '$')
		word->has_alpha = true;
	if (word->truncated)
		return;
	if (cp < 0x80 && word->len < MS_WORD_MAX) {
		word->text[word->len++] = (char)cp;
		return;
	}
	n = utf8_put(buf, cp);
	if (word->len + n > MS_WORD_MAX) {
		word->truncated = true;
		return;
	}
	memcpy(word->text + word->len, buf, n);
	word->len += n;
}

/* A pair of neighbouring ideographs starting at pos (or a lone one). */
static void
cjk_word(const unsigned char *text, size_t size, size_t pos, struct uchar first,
         struct ms_word *word)
{
	enum char_class cls;
	struct uchar next;

	word->cjk = true;
	word_add(word, first.cp);
	if (pos + first.len < size) {
		next = next_char(text, size, pos + first.len, &cls);
		if (cls == C_CJK)
			word_add(word, next.cp);
	}
}

static void
word_reset(struct ms_word *word)
{
	word->len = 0;
	word->nchars = 0;
	word->truncated = word->has_digit = word->has_alpha = word->cjk = false;
}

bool
ms_words_next(const unsigned char *text, size_t size, size_t *pos, struct ms_word *word)
{
	enum char_class cls, next_cls;
	struct uchar u;
	size_t p = *pos, start;

	word_reset(word);
	/* find the start of a word */
	for (;; p += u.len) {
		if (p >= size) {
			*pos = p;
			return false;
		}
		u = next_char(text, size, p, &cls);
		if (cls == C_WORD || cls == C_CJK)
			break;
		if (u.cp == '$' && p + 1 < size && text[p + 1] >= '0' && text[p + 1] <= '9') {
			word_add(word, '$');
			p++;
			u = next_char(text, size, p, &cls);
			break;
		}
	}
	if (cls == C_CJK) {
		cjk_word(text, size, p, u, word);
		*pos = p + u.len;
		return true;
	}
	start = p;
	for (; p < size; p += u.len) {
		u = next_char(text, size, p, &cls);
		if (cls == C_WORD)
			word_add(word, u.cp);
		else if (cls == C_IGNORE)
			continue;
		else if (cls == C_JOIN && p + u.len < size) {
			(void)next_char(text, size, p + u.len, &next_cls);
			if (next_cls != C_WORD)
				break;
			word_add(word, u.cp);
		} else
			break;
	}
	*pos = p > start ? p : start + 1;
	return true;
}
