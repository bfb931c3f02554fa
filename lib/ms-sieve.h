#ifndef MS_SIEVE_H
#define MS_SIEVE_H

#include <stdbool.h>
#include <stddef.h>

/* Sieve at delivery. The script runs with Pigeonhole's semantics; what it
 * decides comes back as plain data (folders with flags, a reject, nothing for
 * discard), and the delivery pipeline writes the folders with its own Maildir
 * writer. This header is the seam: no Dovecot type crosses it, so a second
 * implementation (Pigeonhole for Dovecot 2.4) replaces one .c file. */

#define MS_SIEVE_MAX_STORES   16
#define MS_SIEVE_FOLDER_MAX   256
#define MS_SIEVE_KEYWORDS_MAX 512

/* IMAP system flags a store may carry (imap4flags). */
enum ms_sieve_flag {
	MS_SIEVE_FLAG_ANSWERED = 0x01,
	MS_SIEVE_FLAG_FLAGGED = 0x02,
	MS_SIEVE_FLAG_DELETED = 0x04,
	MS_SIEVE_FLAG_SEEN = 0x08,
	MS_SIEVE_FLAG_DRAFT = 0x10,
};

/* One "deliver to folder F with flags X" decision. */
struct ms_sieve_store {
	char folder[MS_SIEVE_FOLDER_MAX];     /* UTF-8 mailbox name, "INBOX" for keep */
	char fs_folder[MS_SIEVE_FOLDER_MAX];  /* as Maildir++ names it (IMAP UTF-7); "": invalid */
	unsigned int flags;                   /* enum ms_sieve_flag bits */
	char keywords[MS_SIEVE_KEYWORDS_MAX]; /* space-separated IMAP keywords */
};

enum ms_sieve_status {
	MS_SIEVE_DELIVER,  /* write stores[] (none: discarded) */
	MS_SIEVE_REJECT,   /* refuse with reason: 550 5.7.1 / exit 77 */
	MS_SIEVE_TEMPFAIL, /* try again later: nothing was decided */
};

struct ms_sieve_outcome {
	enum ms_sieve_status status;
	unsigned int n_stores;
	unsigned int n_sent; /* redirects and vacation replies handed to sendmail */
	bool script_error;   /* a script failed; the failure keep took over */
	char reason[512];    /* reject reason, or what went wrong */
	/* last: the worker sends only the n_stores used */
	struct ms_sieve_store stores[MS_SIEVE_MAX_STORES];
};

/* What one delivery's Sieve run needs to know, all strings. */
struct ms_sieve_request {
	const char *user;      /* recipient's user name (user@domain) */
	const char *home;      /* recipient's home: ~ and the user's files */
	const char *sender;    /* envelope sender, "" for <> */
	const char *rcpt;      /* final recipient address */
	const char *orig_rcpt; /* original recipient, or NULL */
	const char *mailbox;   /* default mailbox for keep, NULL: INBOX */
	const unsigned char *msg;
	size_t msg_size;
};

/* Site settings (from mailsift.conf). Paths may start with "~/". */
struct ms_sieve_settings {
	const char *script;     /* the user's active script: the `sieve` key */
	const char *script_dir; /* include :personal directory */
	const char *before;     /* site script run first, "" for none */
	const char *after;      /* site script run last, "" for none */
	const char *sendmail;   /* redirect and vacation go out through this */
	const char *postmaster; /* From of rejects and notices; "" = postmaster@host */
	const char *hostname;   /* "" = the system's */
	unsigned int dup_max;   /* entries kept in each user's duplicates file */
};

/* Once per process, before the first run. Returns 0 or -1 (err filled). */
int ms_sieve_init(char *err, size_t errlen);
void ms_sieve_deinit(void);

/* Does this delivery have any script to run (before, user's, after)? */
bool ms_sieve_has_scripts(const struct ms_sieve_settings *set, const char *home);

/* Run the scripts for one message and fill out. Never loses the message: a
 * script that does not compile or fails at run time gives the implicit keep
 * (logged, and written to the script's .log file as Pigeonhole does).
 * Redirects and vacation replies are sent during the run. Dovecot's libraries
 * may abort the process on internal errors: call this in a worker process. */
void ms_sieve_run(const struct ms_sieve_settings *set, const struct ms_sieve_request *req,
                  struct ms_sieve_outcome *out);

#endif
