/* Glue between a mailbox transaction and lib/ms-spool: the only place the
 * plugin touches the spool. */
#include "lib.h"
#include "array.h"
#include "istream.h"
#include "mail-storage.h"
#include "mailsift-plugin.h"
#include "mailsift-batch.h"
#include "ms-spool.h"

struct mailsift_batch {
	const struct mailsift_user *muser;
	const char *username;
	ARRAY(struct ms_spool_writer *) writers;
	/* The first spool error is logged; the rest of the transaction is
	   skipped rather than logging the same problem per message. */
	bool failed;
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

/* Returns 0, or -1 with error set (the stream's or the spool's). */
static int
batch_copy_stream(struct mailsift_batch *batch, struct istream *input,
                  struct ms_spool_writer *writer, const char **error_r)
{
	const unsigned char *data;
	char err[256];
	size_t size;
	uoff_t written = 0;
	int ret;

	while ((ret = i_stream_read_more(input, &data, &size)) > 0) {
		written += size;
		/* The size lookup said it fits; a message that grows while
		   being read is not learned half. */
		if (written > batch->muser->max_size) {
			*error_r = "message grew over mailsift_max_size";
			return -1;
		}
		if (ms_spool_write(writer, data, size, err, sizeof(err)) < 0) {
			batch_spool_failed(batch, err);
			*error_r = "spool write failed";
			return -1;
		}
		i_stream_skip(input, size);
	}
	if (input->stream_errno != 0) {
		*error_r = t_strdup_printf("read(%s): %s", i_stream_get_name(input),
		                           i_stream_get_error(input));
		return -1;
	}
	return 0;
}

static int
batch_write_mail(struct mailsift_batch *batch, struct mail *mail, enum ms_class cls,
                 const char **error_r)
{
	struct ms_spool_writer *writer;
	struct istream *input;
	char err[256];
	int ret;

	if (mail_get_stream(mail, NULL, NULL, &input) < 0) {
		*error_r = mailbox_get_last_internal_error(mail->box, NULL);
		return -1;
	}
	if (ms_spool_begin(batch->muser->spool_dir, batch->username, cls, &writer, err,
	                   sizeof(err)) < 0) {
		batch_spool_failed(batch, err);
		*error_r = "spool unavailable";
		return -1;
	}
	ret = batch_copy_stream(batch, input, writer, error_r);
	if (ret == 0 && ms_spool_finish(writer, err, sizeof(err)) < 0) {
		batch_spool_failed(batch, err);
		*error_r = "spool close failed";
		ret = -1;
	}
	if (ret < 0) {
		ms_spool_abort(&writer);
		return -1;
	}
	array_push_back(&batch->writers, &writer);
	return 0;
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
	if (batch_write_mail(batch, mail, cls, &error) < 0 && !batch->failed) {
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

	count = array_count(&batch->writers);
	if (count > 0) {
		/* One durability barrier for the whole MOVE, not one per
		   message: the IMAP command must stay fast. */
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
