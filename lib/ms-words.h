#ifndef MS_WORDS_H
#define MS_WORDS_H

#include <stdbool.h>
#include <stddef.h>

/* Splitting UTF-8 text into normalized words, the way Bayesian filters
 * found to work: letters and digits, joined by an inner . - ' or _
 * ("e-mail", "3.5", "don't"), lowercase (ASCII, Latin-1, Latin Extended-A,
 * Greek, Cyrillic), fullwidth forms folded to ASCII, zero-width characters
 * and soft hyphens dropped (spammers put them inside words), a leading $
 * kept ("$500"). Han and kana have no spaces: each pair of neighbouring
 * ideographs is a word. Invalid UTF-8 bytes separate words. */

#define MS_WORD_MAX 40 /* bytes kept of a word; longer ones are flagged */

struct ms_word {
	char text[MS_WORD_MAX + 4];
	size_t len;          /* bytes in text */
	unsigned int nchars; /* characters in the whole word */
	bool truncated;      /* longer than MS_WORD_MAX: text is its start */
	bool has_digit, has_alpha;
	bool cjk; /* a pair of characters of a script without spaces (or a lone one) */
};

/* The next word of text at or after *pos; false at the end. */
bool ms_words_next(const unsigned char *text, size_t size, size_t *pos, struct ms_word *word);

#endif
