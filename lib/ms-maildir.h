#ifndef MS_MAILDIR_H
#define MS_MAILDIR_H

#include <stdbool.h>
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* Maildir delivery the way Dovecot does it: tmp/ file opened O_EXCL,
 * written with LF line endings, fsync'd, renamed into new/, new/ fsync'd.
 * Runs with whatever (effective) uid/gid the caller set: files and
 * directories it creates belong to that user, mode 0600 / 0700. */

enum ms_maildir_status {
	MS_MAILDIR_OK,
	MS_MAILDIR_TEMPFAIL,
	MS_MAILDIR_DISKFULL, /* ENOSPC or EDQUOT */
};

/* A piece of the message. CRLF in any piece (also across pieces) is
 * stored as LF. */
struct ms_maildir_chunk {
	const unsigned char *data;
	size_t size;
};

/* host as it goes into file names: '/' -> "\057", ':' -> "\072". */
void ms_maildir_escape_host(const char *host, char *buf, size_t bufsize);

/* "<sec>.M<usec>P<pid>Q<n>.<host>" from the given values, for tests and
 * the writer. Returns 0 or -1 if buf is too small. */
int ms_maildir_base_name(char *buf, size_t bufsize, long sec, long usec, long pid, unsigned int q,
                         const char *escaped_host);

/* Bytes the chunks take with LF line endings (S=) and as CRLF (W=). */
void ms_maildir_sizes(const struct ms_maildir_chunk *chunks, size_t count, size_t *size_r,
                      size_t *vsize_r);

/* Deliver chunks into folder (NULL or "INBOX": the Maildir itself, else
 * Maildir++ ".folder") of the Maildir at dir, creating what is missing.
 * On success path_r holds the file in new/. On failure nothing is left
 * in tmp/ or new/ and err says why. */
enum ms_maildir_status ms_maildir_deliver(const char *dir, const char *folder,
                                          const char *escaped_host,
                                          const struct ms_maildir_chunk *chunks, size_t count,
                                          char *path_r, size_t pathlen, char *err, size_t errlen);

/* The same with Maildir info flags (letters, sorted: "FS"; "" for none)
 * and IMAP keywords (space-separated, NULL for none; recorded in the
 * folder's dovecot-keywords, dropped if that file cannot be updated). A
 * flagged message goes to cur/ with ":2,<flags>", as Dovecot saves it. */
enum ms_maildir_status ms_maildir_deliver_flags(const char *dir, const char *folder,
                                                const char *escaped_host, const char *flags,
                                                const char *keywords,
                                                const struct ms_maildir_chunk *chunks, size_t count,
                                                char *path_r, size_t pathlen, char *err,
                                                size_t errlen);

/* A message written and fsync'd into a Maildir's tmp/, not yet in any
 * folder: the delivery writes it while Sieve decides where it goes, then
 * links it into each folder chosen. */
struct ms_maildir_staged {
	char dir[PATH_MAX];
	char host[NAME_MAX + 1];
	char tmp[PATH_MAX]; /* "": nothing staged */
	char base[NAME_MAX + 1];
	size_t size, vsize;
};

/* Write chunks into dir/tmp/ (creating the Maildir if missing), fsync'd.
 * On failure nothing is left in tmp/ and err says why. */
enum ms_maildir_status ms_maildir_stage(const char *dir, const char *escaped_host,
                                        const struct ms_maildir_chunk *chunks, size_t count,
                                        struct ms_maildir_staged *st, char *err, size_t errlen);

/* Publish the staged message in folder, as ms_maildir_deliver_flags would
 * have stored chunks (the same bytes): a hard link, the directory fsync'd.
 * Where a link cannot be made (or nothing is staged any more) it writes a
 * copy from chunks. The staged file stays for the next folder until
 * ms_maildir_unstage(), except for the last folder: there it is renamed
 * into place, as a plain delivery does, and st no longer holds it. */
enum ms_maildir_status ms_maildir_publish(struct ms_maildir_staged *st, const char *folder,
                                          const char *flags, const char *keywords, bool last,
                                          const struct ms_maildir_chunk *chunks, size_t count,
                                          char *path_r, size_t pathlen, char *err, size_t errlen);

/* Remove the staged tmp/ file (after publishing, or when nothing is kept). */
void ms_maildir_unstage(struct ms_maildir_staged *st);

#endif
