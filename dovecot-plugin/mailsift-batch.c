/* Glue between a mailbox transaction and lib/ms-spool: the only place the
 * plugin touches the spool. */
#include "lib.h"
#include "array.h"
#include "istream.h"
#include "mail-storage.h"
#include "maildir-storage.h"
#include "mailsift-plugin.h"
#include "mailsift-batch.h"
#include "ms-spool.h"

struct mailsift_batch {
	const struct mailsift_user *muser;
	const char *username;
	/* Every batch file of the transaction; current[] is the one each
	   class is writing to (the others rolled over at MS_SPOOL_BATCH_ROLL). */
	ARRAY(struct ms_spool_writer *) writers;
	struct ms_spool_writer *current[2];
	/* The first spool error is logged; the rest of the transaction is
	   skipped rather than logging the same problem per message. */
	bool failed;
	/* The spool cannot take links (no msg/, another file system): the
	   rest of the transaction copies bytes without trying again. */
	bool no_links;
};

struct mailsift_batch *
mailsift_batch_create(const struct mailsift_user *muser, const char *username)
{
	struct mailsift_batch *batch = i_new(struct mailsift_batch, 1);

	batch->muser = muser;
	batch->username = username;
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

/* The batch file cls's messages go to, started on first use. */
static struct ms_spool_writer *
batch_writer(struct mailsift_batch *batch, enum ms_class cls)
{
	struct ms_spool_writer **current = &batch->current[cls == MS_CLASS_SPAM ? 0 : 1];
	char err[256];

	if (*current != NULL && !ms_spool_batch_full(*current))
		return *current;
	if (ms_spool_batch_begin(batch->muser->spool_dir, batch->username, cls, current, err,
	                         sizeof(err)) < 0) {
		*current = NULL;
		batch_spool_failed(batch, err);
		return NULL;
	}
	array_push_back(&batch->writers, current);
	return *current;
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
batch_link_mail(struct mailsift_batch *batch, struct mail *mail, enum ms_class cls)
{
	struct batch_link ctx;

	/* uid 0: a message being saved (APPEND) has no file of its own yet */
	if (!batch->muser->link_files || batch->no_links || mail->uid == 0 ||
	    strcmp(mail->box->storage->name, MAILDIR_STORAGE_NAME) != 0)
		return FALSE;
	if ((ctx.writer = batch_writer(batch, cls)) == NULL)
		return FALSE;
	if (!ms_spool_links_usable(ctx.writer)) {
		batch->no_links = TRUE;
		return FALSE;
	}
	ctx.ret = -1;
	ctx.err[0] = '\0';
	if (maildir_file_do(MAILDIR_MAILBOX(mail->box), mail->uid, batch_link_file, &ctx) < 0)
		return FALSE;
	if (ctx.ret < 0 && ms_spool_links_usable(ctx.writer)) {
		/* one message's trouble (EEXIST, ...): worth a line, not
		   more; the bytes are copied */
		i_warning("mailsift: %s uid %u: %s", mailbox_get_vname(mail->box), mail->uid,
		          ctx.err);
	} else if (ctx.ret < 0) {
		/* another file system, no msg/, protected_hardlinks: by
		   design, but mail_debug should say why MOVEs are slower */
		e_debug(mail_event(mail), "mailsift: %s: copying messages instead", ctx.err);
		batch->no_links = TRUE;
	}
	return ctx.ret > 0;
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
	if (batch_link_mail(batch, mail, cls) || batch->failed)
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
	array_free(&batch->writers);
	i_free(batch);
}

void
mailsift_batch_publish(struct mailsift_batch **_batch)
{
	struct mailsift_batch *batch = *_batch;
	unsigned int count;
	char err[256];

	/* A write that failed may have left part of a record behind. */
	if (batch->failed) {
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
		(void)ms_spool_poke(batch->muser->learner_socket);
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
