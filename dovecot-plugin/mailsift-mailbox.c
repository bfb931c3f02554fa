/* The mailbox hooks: which copies are training events, and tying their
 * spool files to the fate of the transaction that copies them. */
#include "lib.h"
#include "mail-storage-private.h"
#include "mailsift-plugin.h"
#include "mailsift-batch.h"

#define MAILSIFT_CONTEXT(obj)         MODULE_CONTEXT(obj, mailsift_storage_module)
#define MAILSIFT_CONTEXT_REQUIRE(obj) MODULE_CONTEXT_REQUIRE(obj, mailsift_storage_module)

/* Deliveries (LMTP, LDA) copy from a mailbox of the "raw" storage. */
#define RAW_STORAGE_NAME "raw"

enum mailsift_role {
	MAILSIFT_ROLE_OTHER,
	MAILSIFT_ROLE_JUNK,
	MAILSIFT_ROLE_TRASH,
};

struct mailsift_mailbox {
	union mailbox_module_context module_ctx;
	enum mailsift_role role;
};

struct mailsift_transaction {
	union mailbox_transaction_module_context module_ctx;
	struct mailsift_batch *batch;
};

static MODULE_CONTEXT_DEFINE_INIT(mailsift_storage_module, &mail_storage_module_register);

static bool
name_listed(struct mailbox *box, const char *const *names)
{
	for (; *names != NULL; names++) {
		if (strcmp(*names, box->vname) == 0 || strcmp(*names, box->name) == 0)
			return TRUE;
	}
	return FALSE;
}

static enum mailsift_role
mailbox_role(struct mailbox *box, const struct mailsift_user *muser)
{
	if (mailbox_has_special_use(box, "\\Junk") || name_listed(box, muser->junk_names))
		return MAILSIFT_ROLE_JUNK;
	if (mailbox_has_special_use(box, "\\Trash") || name_listed(box, muser->trash_names))
		return MAILSIFT_ROLE_TRASH;
	return MAILSIFT_ROLE_OTHER;
}

/* Into Junk is spam; out of Junk into anything but Trash is ham; Trash to
 * anywhere and Junk to Junk are nothing. Returns FALSE for nothing. */
static bool
copy_class(enum mailsift_role src, enum mailsift_role dest, enum ms_class *cls_r)
{
	if (src == MAILSIFT_ROLE_TRASH || src == dest)
		return FALSE;
	if (dest == MAILSIFT_ROLE_JUNK) {
		*cls_r = MS_CLASS_SPAM;
		return TRUE;
	}
	if (src == MAILSIFT_ROLE_JUNK && dest != MAILSIFT_ROLE_TRASH) {
		*cls_r = MS_CLASS_HAM;
		return TRUE;
	}
	return FALSE;
}

static struct mailsift_batch *
transaction_batch(struct mailbox_transaction_context *t)
{
	struct mailsift_transaction *mt = MAILSIFT_CONTEXT(t);
	struct mail_user *user = t->box->storage->user;

	/* Created on the first training event: most transactions have none. */
	if (mt == NULL) {
		mt = i_new(struct mailsift_transaction, 1);
		mt->batch = mailsift_batch_create(MAILSIFT_USER_CONTEXT(user), t->box);
		MODULE_CONTEXT_SET(t, mailsift_storage_module, mt);
	}
	return mt->batch;
}

/* Forget t's context (t is about to be freed); returns its batch or NULL. */
static struct mailsift_batch *
transaction_take_batch(struct mailbox_transaction_context *t)
{
	struct mailsift_transaction *mt = MAILSIFT_CONTEXT(t);
	struct mailsift_batch *batch;

	if (mt == NULL)
		return NULL;
	batch = mt->batch;
	MODULE_CONTEXT_UNSET(t, mailsift_storage_module);
	i_free(mt);
	return batch;
}

static void
learn_copy(struct mailbox_transaction_context *t, struct mail *mail)
{
	struct mailsift_mailbox *dest = MAILSIFT_CONTEXT_REQUIRE(t->box);
	struct mailsift_mailbox *src = MAILSIFT_CONTEXT(mail->box);
	enum mailsift_role src_role;
	enum ms_class cls;

	if (strcmp(mail->box->storage->name, RAW_STORAGE_NAME) == 0)
		return;
	src_role = src != NULL
	                   ? src->role
	                   : mailbox_role(mail->box, MAILSIFT_USER_CONTEXT(t->box->storage->user));
	if (copy_class(src_role, dest->role, &cls))
		mailsift_batch_add(transaction_batch(t), mail, cls);
}

static int
mailsift_copy(struct mail_save_context *ctx, struct mail *mail)
{
	struct mailbox_transaction_context *t = ctx->transaction;
	struct mailsift_mailbox *mbox = MAILSIFT_CONTEXT_REQUIRE(t->box);
	/* saving is set when a delivery (LMTP, LDA, Sieve's fileinto) or
	   dsync saves a mail through the copy path: not the user's move. */
	bool delivery = ctx->saving;

	if (mbox->module_ctx.super.copy(ctx, mail) < 0)
		return -1;
	if (!delivery)
		learn_copy(t, mail);
	return 0;
}

static int
mailsift_save_finish(struct mail_save_context *ctx)
{
	struct mailbox_transaction_context *t = ctx->transaction;
	struct mailsift_mailbox *mbox = MAILSIFT_CONTEXT_REQUIRE(t->box);
	struct mailsift_user *muser = MAILSIFT_USER_CONTEXT(t->box->storage->user);
	/* Copies that fall back to saving are the copy hook's business. */
	bool append = !ctx->copying_or_moving;
	struct mail *dest_mail = ctx->dest_mail;

	if (mbox->module_ctx.super.save_finish(ctx) < 0)
		return -1;
	if (append && mbox->role == MAILSIFT_ROLE_JUNK && muser->learn_append)
		mailsift_batch_add(transaction_batch(t), dest_mail, MS_CLASS_SPAM);
	return 0;
}

static int
mailsift_transaction_commit(struct mailbox_transaction_context *t,
                            struct mail_transaction_commit_changes *changes_r)
{
	struct mailsift_mailbox *mbox = MAILSIFT_CONTEXT_REQUIRE(t->box);
	struct mailsift_batch *batch = transaction_take_batch(t);

	if (mbox->module_ctx.super.transaction_commit(t, changes_r) < 0) {
		if (batch != NULL)
			mailsift_batch_drop(&batch);
		return -1;
	}
	if (batch != NULL)
		mailsift_batch_publish(&batch, changes_r);
	return 0;
}

static void
mailsift_transaction_rollback(struct mailbox_transaction_context *t)
{
	struct mailsift_mailbox *mbox = MAILSIFT_CONTEXT_REQUIRE(t->box);
	struct mailsift_batch *batch = transaction_take_batch(t);

	if (batch != NULL)
		mailsift_batch_drop(&batch);
	mbox->module_ctx.super.transaction_rollback(t);
}

void
mailsift_mailbox_allocated(struct mailbox *box)
{
	struct mailsift_user *muser = MAILSIFT_USER_CONTEXT(box->storage->user);
	struct mailbox_vfuncs *v = box->vlast;
	struct mailsift_mailbox *mbox;

	if (muser == NULL)
		return;
	mbox = p_new(box->pool, struct mailsift_mailbox, 1);
	mbox->module_ctx.super = *v;
	box->vlast = &mbox->module_ctx.super;
	mbox->role = mailbox_role(box, muser);

	v->copy = mailsift_copy;
	v->save_finish = mailsift_save_finish;
	v->transaction_commit = mailsift_transaction_commit;
	v->transaction_rollback = mailsift_transaction_rollback;
	MODULE_CONTEXT_SET(box, mailsift_storage_module, mbox);
}
