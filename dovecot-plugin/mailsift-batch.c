/* Glue between a mailbox transaction and lib/ms-spool: the only place the
 * plugin touches the spool. */
#include "lib.h"
#include "array.h"
#include "istream.h"
#include "mail-storage.h"
#include "maildir-storage.h"
#include "mailsift-plugin.h"
#include "mailsift-batch.h"
#include "mailsift-refs.h"
#include "ms-spool.h"

#include <sys/stat.h>

struct mailsift_batch {
	const struct mailsift_user *muser;
	struct mailbox *box; /* the transaction's: where messages go */
	const char *username;
	/* Every batch file of the transaction; current[] is the one each
	   class is writing to (the others rolled over at MS_SPOOL_BATCH_ROLL),
	   refs[] the one each class names Maildir files in (format 4). */
	ARRAY(struct ms_spool_writer *) writers;
	struct ms_spool_writer *current[2], *refs[2];
	/* Maildir copies found again after the commit; refs_state: 0 not
	   known yet, 1 box and spool share a file system, -1 they do not. */
	struct mailsift_refs *deferred;
	int refs_state;
	/* The first spool error is logged; the rest of the transaction is
	   skipped rather than logging the same problem per message. */
	bool failed;
	/* The spool cannot take links (no msg/, another file system): the
	   rest of the transaction copies bytes without trying again. */
	bool no_links;
};

struct mailsift_batch *
mailsift_batch_create(const struct mailsift_user *muser, struct mailbox *box)
{
	struct mailsift_batch *batch = i_new(struct mailsift_batch, 1);

	batch->muser = muser;
	batch->box = box;
	batch->username = box->storage->user->username;
	i_array_init(&batch->writers, 16);
	return batch;
}

static void
batch_spool_failed(struct mailsift_batch *batch, const char *error)
{
	i_error("mailsift: spool %s: %s (training events of this transaction are lost)",
	        batch->muser->spool_dir, error);
	batch->failed = TRUE;
}

/* Copies the message's size bytes (its size lookup); returns 0, or -1 with
 * error set (the stream's or the spool's). Stopping at size rather than at
 * EOF saves a read per message; a stored message does not change, and a
 * short one is caught by ms_spool_record_end(). */
static int
batch_copy_stream(struct mailsift_batch *batch, struct istream *input, uoff_t left,
                  struct ms_spool_writer *writer, const char **error_r)
{
	const unsigned char *data;
	char err[256];
	size_t size;

	while (left > 0 && i_stream_read_more(input, &data, &size) > 0) {
		if (size > left)
			size = left;
		if (ms_spool_write(writer, data, size, err, sizeof(err)) < 0) {
			batch_spool_failed(batch, err);
			*error_r = "spool write failed";
			return -1;
		}
		i_stream_skip(input, size);
		left -= size;
	}
	if (input->stream_errno != 0) {
		*error_r = t_strdup_printf("read(%s): %s", i_stream_get_name(input),
		                           i_stream_get_error(input));
		return -1;
	}
	return 0;
}

/* The batch file cls's messages (maildir NULL) or references to files of
 * maildir go to, started on first use. */
static struct ms_spool_writer *
batch_writer_of(struct mailsift_batch *batch, enum ms_class cls, const char *maildir)
{
	unsigned int i = cls == MS_CLASS_SPAM ? 0 : 1;
	struct ms_spool_writer **current = maildir == NULL ? &batch->current[i] : &batch->refs[i];
	const char *spool_dir = batch->muser->spool_dir;
	char err[256];
	int ret;

	if (*current != NULL && !ms_spool_batch_full(*current))
		return *current;
	ret = maildir == NULL ? ms_spool_batch_begin(spool_dir, batch->username, cls, current, err,
	                                             sizeof(err))
	                      : ms_spool_refs_begin(spool_dir, batch->username, cls, maildir,
	                                            current, err, sizeof(err));
	if (ret < 0) {
		*current = NULL;
		batch_spool_failed(batch, err);
		return NULL;
	}
	array_push_back(&batch->writers, current);
	return *current;
}

static struct ms_spool_writer *
batch_writer(struct mailsift_batch *batch, enum ms_class cls)
{
	return batch_writer_of(batch, cls, NULL);
}

static int
batch_write_mail(struct mailsift_batch *batch, struct mail *mail, uoff_t size, enum ms_class cls,
                 const char **error_r)
{
	struct ms_spool_writer *writer;
	struct istream *input;
	char err[256];

	if (mail_get_stream(mail, NULL, NULL, &input) < 0) {
		*error_r = mailbox_get_last_internal_error(mail->box, NULL);
		return -1;
	}
	if ((writer = batch_writer(batch, cls)) == NULL) {
		*error_r = "spool unavailable";
		return -1;
	}
	if (ms_spool_record_begin(writer, size, err, sizeof(err)) < 0) {
		batch_spool_failed(batch, err);
		*error_r = "spool write failed";
		return -1;
	}
	if (batch_copy_stream(batch, input, size, writer, error_r) < 0) {
		if (ms_spool_record_abort(writer, err, sizeof(err)) < 0 && !batch->failed)
			batch_spool_failed(batch, err);
		return -1;
	}
	/* The size lookup and the stream disagree (the message changed
	   under us): the record is taken back rather than learned half. */
	if (ms_spool_record_end(writer, err, sizeof(err)) < 0) {
		*error_r = t_strdup(err);
		return -1;
	}
	return 0;
}

struct batch_link {
	struct ms_spool_writer *writer;
	int ret;
	char err[256];
};

static int
batch_link_file(struct maildir_mailbox *mbox ATTR_UNUSED, const char *path, struct batch_link *ctx)
{
	ctx->ret = ms_spool_record_link(ctx->writer, path, ctx->err, sizeof(ctx->err));
	/* 0: not under this name (flags changed it): Dovecot looks again */
	return ctx->ret == 0 ? 0 : 1;
}

/* Hard-links mail's Maildir file into the spool, as Dovecot's own MOVE
 * does into the destination, instead of reading and copying its bytes.
 * Returns FALSE when the bytes must be copied: another storage, another
 * file system, or any trouble with the link. */
static bool
batch_link_uid(struct mailsift_batch *batch, struct mailbox *box, uint32_t uid, enum ms_class cls)
{
	struct batch_link ctx;

	if (batch->no_links || (ctx.writer = batch_writer(batch, cls)) == NULL)
		return FALSE;
	if (!ms_spool_links_usable(ctx.writer)) {
		batch->no_links = TRUE;
		return FALSE;
	}
	ctx.ret = -1;
	ctx.err[0] = '\0';
	if (maildir_file_do(MAILDIR_MAILBOX(box), uid, batch_link_file, &ctx) < 0)
		return FALSE;
	if (ctx.ret < 0 && ms_spool_links_usable(ctx.writer)) {
		/* one message's trouble (EEXIST, ...): worth a line, not
		   more; the bytes are copied */
		i_warning("mailsift: %s uid %u: %s", mailbox_get_vname(box), uid, ctx.err);
	} else if (ctx.ret < 0) {
		/* another file system, no msg/, protected_hardlinks: by
		   design, but mail_debug should say why MOVEs are slower */
		e_debug(box->event, "mailsift: %s: copying messages instead", ctx.err);
		batch->no_links = TRUE;
	}
	return ctx.ret > 0;
}

/* uid 0: a message being saved (APPEND) has no file of its own yet */
static bool
batch_can_link(const struct mailsift_batch *batch, const struct mail *mail)
{
	return batch->muser->link_files && mail->uid != 0 &&
	       strcmp(mail->box->storage->name, MAILDIR_STORAGE_NAME) == 0;
}

static bool
batch_link_mail(struct mailsift_batch *batch, struct mail *mail, enum ms_class cls)
{
	return batch_can_link(batch, mail) && batch_link_uid(batch, mail->box, mail->uid, cls);
}

/* The learner pins referenced files with link() into the spool's msg/:
 * that takes one file system. Looked at once per transaction. */
static bool
batch_refs_usable(struct mailsift_batch *batch)
{
	struct stat box_st, msg_st;
	const char *path;

	if (batch->refs_state == 0) {
		batch->refs_state = -1;
		if (strcmp(batch->box->storage->name, MAILDIR_STORAGE_NAME) == 0 &&
		    mailbox_get_path_to(batch->box, MAILBOX_LIST_PATH_TYPE_MAILBOX, &path) > 0 &&
		    ms_spool_maildir_valid(path, strlen(path)) && stat(path, &box_st) == 0 &&
		    stat(t_strconcat(batch->muser->spool_dir, "/" MS_SPOOL_LINK_DIR, NULL),
		         &msg_st) == 0 &&
		    box_st.st_dev == msg_st.st_dev)
			batch->refs_state = 1;
	}
	return batch->refs_state > 0;
}

/* A Maildir to Maildir copy: remember it and name the copy's file after
 * the commit, when Dovecot has put it in place (no syscall per message). */
static bool
batch_defer_mail(struct mailsift_batch *batch, struct mail *mail, enum ms_class cls)
{
	if (!batch_can_link(batch, mail) || !batch_refs_usable(batch))
		return FALSE;
	if (batch->deferred == NULL)
		batch->deferred = mailsift_refs_create();
	return mailsift_refs_add(batch->deferred, mail, cls);
}

void
mailsift_batch_add(struct mailsift_batch *batch, struct mail *mail, enum ms_class cls)
{
	const char *error;
	uoff_t size;

	if (batch->failed)
		return;
	if (mail_get_physical_size(mail, &size) < 0) {
		i_error("mailsift: %s uid %u: size lookup failed: %s", mailbox_get_vname(mail->box),
		        mail->uid, mailbox_get_last_internal_error(mail->box, NULL));
		return;
	}
	if (size > batch->muser->max_size) {
		i_info("mailsift: %s uid %u not learned as %s: %" PRIuUOFF_T
		       " bytes is over mailsift_max_size",
		       mailbox_get_vname(mail->box), mail->uid, ms_spool_class_name(cls), size);
		return;
	}
	if (batch_defer_mail(batch, mail, cls) || batch_link_mail(batch, mail, cls) ||
	    batch->failed)
		return;
	if (batch_write_mail(batch, mail, size, cls, &error) < 0 && !batch->failed) {
		i_error("mailsift: %s uid %u not learned as %s: %s", mailbox_get_vname(mail->box),
		        mail->uid, ms_spool_class_name(cls), error);
	}
}

static void
batch_free(struct mailsift_batch **_batch)
{
	struct mailsift_batch *batch = *_batch;

	*_batch = NULL;
	if (batch->deferred != NULL)
		mailsift_refs_free(&batch->deferred);
	array_free(&batch->writers);
	i_free(batch);
}

struct batch_found {
	struct mailsift_batch *batch;
	const char *maildir;
	bool learner_up;
};

static void
batch_ref_found(void *context, struct mailbox *box, uint32_t uid, const char *ref,
                enum ms_class cls)
{
	struct batch_found *ctx = context;
	struct mailsift_batch *batch = ctx->batch;
	struct ms_spool_writer *writer;
	bool nameable = ms_spool_ref_valid(ref, strlen(ref));
	char err[256];

	/* Without a learner to pin the file, a link keeps the message if
	   the user expunges it first; a reference is the fallback. */
	if (batch->failed ||
	    ((!ctx->learner_up || !nameable) && batch_link_uid(batch, box, uid, cls)))
		return;
	if (!nameable) {
		/* bytes beyond ASCII in the host name part, say */
		i_error("mailsift: %s uid %u not learned as %s: the spool cannot name %s",
		        mailbox_get_vname(box), uid, ms_spool_class_name(cls), ref);
		return;
	}
	if ((writer = batch_writer_of(batch, cls, ctx->maildir)) == NULL)
		return;
	if (ms_spool_record_ref(writer, ref, err, sizeof(err)) < 0)
		batch_spool_failed(batch, err);
}

/* Names the files the committed copy made (changes: its saved UIDs).
 * Returns the learner connection to poke, or -1. */
static int
batch_resolve_deferred(struct mailsift_batch *batch,
                       const struct mail_transaction_commit_changes *changes)
{
	struct batch_found ctx = {.batch = batch};
	unsigned int missing;
	int fd;

	if (mailbox_get_path_to(batch->box, MAILBOX_LIST_PATH_TYPE_MAILBOX, &ctx.maildir) <= 0) {
		i_error("mailsift: %s: no Maildir path: %u messages not learned",
		        mailbox_get_vname(batch->box), mailsift_refs_count(batch->deferred));
		return -1;
	}
	fd = ms_spool_learner_connect(batch->muser->learner_socket);
	ctx.learner_up = fd >= 0;
	missing =
	        mailsift_refs_resolve(batch->deferred, batch->box, changes, batch_ref_found, &ctx);
	if (missing > 0) {
		i_error("mailsift: %s: %u copied messages not learned: not found after the copy",
		        mailbox_get_vname(batch->box), missing);
	}
	return fd;
}

void
mailsift_batch_publish(struct mailsift_batch **_batch,
                       const struct mail_transaction_commit_changes *changes)
{
	struct mailsift_batch *batch = *_batch;
	unsigned int count;
	char err[256];
	/* a batch with deferred copies asked the learner's socket already */
	bool asked = batch->deferred != NULL && !batch->failed;
	int fd = asked ? batch_resolve_deferred(batch, changes) : -1;

	/* A write that failed may have left part of a record behind. */
	if (batch->failed) {
		if (fd >= 0)
			(void)close(fd);
		mailsift_batch_drop(_batch);
		return;
	}
	count = array_count(&batch->writers);
	if (count > 0) {
		/* One file per class (and 32 MB), one fdatasync each and
		   one directory fsync for the whole MOVE: the IMAP command
		   must stay fast. */
		if (ms_spool_commit_many(array_front_modifiable(&batch->writers), count, err,
		                         sizeof(err)) < 0)
			batch_spool_failed(batch, err);
		if (fd >= 0)
			(void)ms_spool_poke_fd(fd);
		else if (!asked)
			(void)ms_spool_poke(batch->muser->learner_socket);
	} else if (fd >= 0) {
		(void)close(fd);
	}
	batch_free(_batch);
}

void
mailsift_batch_drop(struct mailsift_batch **_batch)
{
	struct mailsift_batch *batch = *_batch;
	struct ms_spool_writer **writer;

	array_foreach_modifiable(&batch->writers, writer) ms_spool_abort(writer);
	batch_free(_batch);
}
