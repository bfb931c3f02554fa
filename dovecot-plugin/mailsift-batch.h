#ifndef MAILSIFT_BATCH_H
#define MAILSIFT_BATCH_H

#include "ms-filter.h"

struct mail;
struct mailsift_user;

/* The training events of one mailbox transaction: one batch spool file per
 * class (doc/spool.md, format 2) written to tmp/ while the messages are
 * copied, published when the transaction commits, dropped when it does
 * not. Spool trouble is logged and never fails the user's command. */
struct mailsift_batch;

struct mailsift_batch *mailsift_batch_create(const struct mailsift_user *muser,
                                             const char *username);
/* Write mail's text as stored (the learner's digest ignores CRLF vs LF)
 * as a cls event. */
void mailsift_batch_add(struct mailsift_batch *batch, struct mail *mail, enum ms_class cls);
/* Sync and rename the files into new/, poke the learner without waiting. */
void mailsift_batch_publish(struct mailsift_batch **batch);
void mailsift_batch_drop(struct mailsift_batch **batch);

#endif
