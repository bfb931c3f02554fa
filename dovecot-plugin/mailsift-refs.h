#ifndef MAILSIFT_REFS_H
#define MAILSIFT_REFS_H

#include "ms-filter.h"

struct mail;
struct mailbox;
struct mail_transaction_commit_changes;

/* Messages copied from one Maildir into another, remembered by their GUID
 * while the transaction runs and found again in the destination after it
 * committed: Dovecot's own MOVE hard-links each file under the GUID's
 * name, so the spool can name that file (doc/spool.md, format 4) instead
 * of linking or copying it during the user's command. */
struct mailsift_refs;

struct mailsift_refs *mailsift_refs_create(void);
void mailsift_refs_free(struct mailsift_refs **refs);

/* Remember mail (a Maildir message being copied) as a cls event. FALSE
 * when it has no GUID to find it by: the caller spools it another way. */
bool mailsift_refs_add(struct mailsift_refs *refs, struct mail *mail, enum ms_class cls);
unsigned int mailsift_refs_count(const struct mailsift_refs *refs);

/* A destination file found: ref is "new/<name>" or "cur/<name>" under
 * the Maildir of box. */
typedef void mailsift_refs_found_t(void *context, struct mailbox *box, uint32_t uid,
                                   const char *ref, enum ms_class cls);

/* Looks up each message the committed transaction saved into box (a
 * Maildir) in Dovecot's uidlist, in memory, and calls found for the ones
 * remembered. Returns how many remembered messages were not found. */
unsigned int mailsift_refs_resolve(struct mailsift_refs *refs, struct mailbox *box,
                                   const struct mail_transaction_commit_changes *changes,
                                   mailsift_refs_found_t *found, void *context);

#endif
