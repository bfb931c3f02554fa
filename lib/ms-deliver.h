#ifndef MS_DELIVER_H
#define MS_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

struct ms_config;
struct ms_verdict;

/* The one delivery pipeline of mailsift-lmtpd and mailsift-lda:
 * recipient -> user lookup -> headers -> folder -> Maildir, fsync'd. */

enum ms_deliver_status {
	MS_DELIVER_OK,       /* on disk, fsync'd: 250 2.0.0 / exit 0 */
	MS_DELIVER_NOUSER,   /* unknown or unsafe recipient: 550 5.1.1 / 67 */
	MS_DELIVER_TEMPFAIL, /* lookup or storage trouble: 451 4.3.0 / 75 */
	MS_DELIVER_DISKFULL, /* ENOSPC, EDQUOT: 452 4.2.2 / 75 */
	MS_DELIVER_TOOBIG,   /* over max_message_size: 552 5.3.4 / 75 */
	MS_DELIVER_REJECTED, /* Sieve reject: 550 5.7.1 / 77 */
};

struct ms_envelope {
	const char *sender;    /* MAIL FROM path without <>, "" for the null sender */
	const char *rcpt;      /* RCPT TO address as given */
	const char *orig_rcpt; /* ORCPT / -a, or NULL */
	const char *mailbox;   /* -m: folder asked for, or NULL for the filter's choice */
};

/* A whole message as received: CRLF or LF line endings, dot-stuffing
 * already undone. Stored with LF line endings. */
struct ms_message {
	const unsigned char *data;
	size_t size;
};

struct ms_deliver_result {
	enum ms_deliver_status status;
	char reason[256]; /* human text for the reply / log */
	char path[1024];  /* the file in new/ on success */
};

struct ms_deliver;

/* Per process. cfg must outlive it. Returns NULL after logging why (an
 * unknown user/group, a bad userdb spec or mail_location): a startup error.
 * A missing userdb file is not one; lookups then TEMPFAIL until it exists.
 * When the process is root, each delivery switches the effective uid/gid
 * to the user's (from the userdb) and back; otherwise it writes as itself. */
struct ms_deliver *ms_deliver_create(const struct ms_config *cfg);
void ms_deliver_destroy(struct ms_deliver **ctx);

/* RCPT time: is this a user we deliver to? OK, NOUSER or TEMPFAIL. */
enum ms_deliver_status ms_deliver_check_rcpt(struct ms_deliver *ctx, const char *rcpt,
                                             struct ms_deliver_result *result);

/* Deliver msg to env->rcpt. verdict is the message's filter result,
 * computed once per message by the caller (NULL: deliver unfiltered). */
enum ms_deliver_status ms_deliver_message(struct ms_deliver *ctx, const struct ms_envelope *env,
                                          const struct ms_message *msg,
                                          const struct ms_verdict *verdict,
                                          struct ms_deliver_result *result);

#endif
