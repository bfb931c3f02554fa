#ifndef MS_MAILDIR_KEYWORDS_H
#define MS_MAILDIR_KEYWORDS_H

#include <stddef.h>

/* IMAP keywords in a Maildir folder the way Dovecot keeps them: the file
 * dovecot-keywords maps "<index> <keyword>" lines to the letters a-z that a
 * message's info (":2,Fab") carries. At most 26 per folder, as in Dovecot. */

#define MS_MAILDIR_KEYWORDS_MAX 26

/* Letters for the space-separated keywords in folder directory fdir,
 * appending the ones the file lacks (under Dovecot's dotlock,
 * dovecot-keywords.lock). Keywords past the 26th are left out. letters must
 * hold MS_MAILDIR_KEYWORDS_MAX + 1 bytes. Returns 0, or -1 with err set. */
int ms_maildir_keyword_letters(const char *fdir, const char *keywords, char *letters, char *err,
                               size_t errlen);

#endif
