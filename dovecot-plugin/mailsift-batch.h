#ifndef MAILSIFT_BATCH_H
#define MAILSIFT_BATCH_H

#include "ms-filter.h"

struct mail;
struct mailbox;
struct mail_transaction_commit_changes;
struct mailsift_user;

/* The training events of one mailbox transaction: one batch spool file per
 * class (doc/spool.md, formats 2 and 3) written to tmp/ while the messages
 * are copied, and for Maildir to Maildir copies one per class naming the
 * files the copy made (format 4), written after the commit; all published
 * when the transaction commits, dropped when it does not. Spool trouble
 * is logged and never fails the user's command. */
struct mailsift_batch;

/* box: the transaction's mailbox, where the messages go. */
struct mailsift_batch *mailsift_batch_create(const struct mailsift_user *muser,
                                             struct mailbox *box);
/* Write mail's text as stored (the learner's digest ignores CRLF vs LF)
 * as a cls event. */
void mailsift_batch_add(struct mailsift_batch *batch, struct mail *mail, enum ms_class cls);
/* After the commit (changes: its saved UIDs): name the copies' files, sync
 * and rename the files into new/, poke the learner without waiting. */
void mailsift_batch_publish(struct mailsift_batch **batch,
                            const struct mail_transaction_commit_changes *changes);
void mailsift_batch_drop(struct mailsift_batch **batch);

#endif
