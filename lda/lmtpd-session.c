/* One LMTP client: lib-smtp parses and sequences the commands, this file
 * answers RCPT from the userdb, collects the message and delivers it once
 * per accepted recipient, one reply each, in RCPT order (RFC 2033). */
#include "lib.h"
#include "array.h"
#include "ioloop.h"
#include "istream.h"
#include "smtp-address.h"
#include "smtp-server.h"
#include "str.h"
#include "str-sanitize.h"
#include "strnum.h"

#include "ms-config.h"
#include "ms-deliver.h"
#include "ms-filter.h"
#include "ms-log.h"
#include "ms-msgbuf.h"
#include "lmtpd.h"

#include <errno.h>

/* Messages up to this size stay in memory; larger ones go to a temp file. */
#define LMTPD_MSG_MEM_LIMIT (256 * 1024)

struct lmtpd_session {
	const struct lmtpd_env *env;
	struct lmtpd_server *server;
	struct smtp_server_connection *conn;
	struct istream *data_input;
	struct ms_msgbuf *msg;
	struct timeout *to_close;
	int store_errno; /* the message could not be kept */
	bool too_big;
	bool in_transaction;
	bool shutting_down;
};

struct lmtpd_reply {
	unsigned int code;
	const char *enh;
	const char *text;
};

/* DESIGN.md's reply codes, one per delivery status. */
static const struct lmtpd_reply lmtpd_replies[] = {
        [MS_DELIVER_OK] = {250, "2.0.0", "Delivered"},
        [MS_DELIVER_NOUSER] = {550, "5.1.1", "User doesn't exist"},
        [MS_DELIVER_TEMPFAIL] = {451, "4.3.0", "Temporary failure"},
        [MS_DELIVER_DISKFULL] = {452, "4.2.2", "Mailbox full or disk full"},
        [MS_DELIVER_TOOBIG] = {552, "5.3.4", "Message too big"},
        [MS_DELIVER_REJECTED] = {550, "5.7.1", "Rejected"},
};

static const struct lmtpd_reply *
reply_for(enum ms_deliver_status status)
{
	if ((unsigned int)status >= N_ELEMENTS(lmtpd_replies) || lmtpd_replies[status].enh == NULL)
		return &lmtpd_replies[MS_DELIVER_TEMPFAIL];
	return &lmtpd_replies[status];
}

/* The result's reason if it has one, made safe for a one-line reply. */
static const char *
reply_text(const struct lmtpd_reply *reply, const struct ms_deliver_result *result)
{
	string_t *str;
	const char *p;

	if (result->reason[0] == '\0')
		return reply->text;
	str = t_str_new(sizeof(result->reason));
	for (p = result->reason; *p != '\0'; p++)
		str_append_c(str, (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
	return str_c(str);
}

/* The address the delivery pipeline sees: decoded, unquoted, so its path
 * safety check sees "../" or "/" exactly as the client sent them. */
static const char *
rcpt_address(const struct smtp_address *path)
{
	if (path->domain == NULL || *path->domain == '\0')
		return path->localpart;
	return t_strconcat(path->localpart, "@", path->domain, NULL);
}

static int
session_cmd_rcpt(void *context, struct smtp_server_cmd_ctx *cmd ATTR_UNUSED,
                 struct smtp_server_recipient *rcpt)
{
	struct lmtpd_session *session = context;
	struct ms_deliver_result result;
	const struct lmtpd_reply *reply;
	enum ms_deliver_status status;
	const char *addr = rcpt_address(rcpt->path);

	i_zero(&result);
	status = ms_deliver_check_rcpt(session->env->deliver, addr, &result);
	if (status == MS_DELIVER_OK)
		return 1;
	if (status != MS_DELIVER_NOUSER)
		status = MS_DELIVER_TEMPFAIL;
	reply = reply_for(status);
	ms_log_info("rcpt %s: %s", str_sanitize_utf8(addr, 128), reply_text(reply, &result));
	smtp_server_recipient_reply(rcpt, reply->code, reply->enh, "%s",
	                            reply_text(reply, &result));
	return -1;
}

/* The LHLO reply, written here only for "SIZE <max>" (RFC 1870): lib-smtp
 * would announce the number only if it enforced the limit itself. */
static int
session_cmd_helo(void *context, struct smtp_server_cmd_ctx *cmd, struct smtp_server_cmd_helo *data)
{
	static const char *const keywords[] = {"8BITMIME", "CHUNKING", "ENHANCEDSTATUSCODES",
	                                       "PIPELINING"};
	struct lmtpd_session *session = context;
	size_t max = session->env->cfg->max_message_size;
	struct smtp_server_reply *reply;
	unsigned int i;

	if (data->helo.old_smtp)
		return 1;
	reply = smtp_server_reply_create_ehlo(cmd->cmd);
	for (i = 0; i < N_ELEMENTS(keywords); i++)
		smtp_server_reply_ehlo_add(reply, keywords[i]);
	if (max > 0)
		smtp_server_reply_ehlo_add_param(reply, "SIZE", "%zu", max);
	else
		smtp_server_reply_ehlo_add(reply, "SIZE");
	smtp_server_reply_submit(reply);
	return 1;
}

/* SIZE is checked here, not by lib-smtp, so that every "too big" is
 * 552 5.3.4 and lib-smtp never fails a DATA in mid stream (see below). */
static int
session_cmd_mail(void *context, struct smtp_server_cmd_ctx *cmd, struct smtp_server_cmd_mail *data)
{
	struct lmtpd_session *session = context;
	size_t max = session->env->cfg->max_message_size;
	const struct smtp_param *param = smtp_params_mail_get_extra(&data->params, "SIZE");
	uoff_t size;

	if (param == NULL)
		return 1;
	if (param->value == NULL || str_to_uoff(param->value, &size) < 0) {
		smtp_server_reply(cmd, 501, "5.5.4", "Invalid SIZE= parameter");
		return -1;
	}
	if (max > 0 && size > max) {
		smtp_server_reply(cmd, 552, "5.3.4", "Message too big for system (limit %zu)", max);
		return -1;
	}
	return 1;
}

static int
session_cmd_data_begin(void *context, struct smtp_server_cmd_ctx *cmd,
                       struct smtp_server_transaction *trans ATTR_UNUSED,
                       struct istream *data_input)
{
	struct lmtpd_session *session = context;

	if (session->msg == NULL)
		session->msg = ms_msgbuf_create(LMTPD_MSG_MEM_LIMIT, NULL);
	if (session->msg == NULL) {
		smtp_server_reply(cmd, 451, "4.3.0", "Temporary failure: out of memory");
		return -1;
	}
	ms_msgbuf_reset(session->msg);
	session->store_errno = 0;
	session->too_big = FALSE;
	i_stream_ref(data_input);
	session->data_input = data_input;
	return 0;
}

static void
session_reply_all(struct smtp_server_transaction *trans, enum ms_deliver_status status,
                  const struct ms_deliver_result *result)
{
	const struct lmtpd_reply *reply = reply_for(status);
	struct smtp_server_recipient *rcpt;

	array_foreach_elem(&trans->rcpt_to, rcpt) smtp_server_recipient_reply(
	        rcpt, reply->code, reply->enh, "%s", reply_text(reply, result));
}

/* The filter runs once per message, before the per-recipient deliveries,
 * and every recipient's copy gets its verdict in the X-Spam-* headers; with
 * per_user = yes each recipient's own statistics decide, once per recipient.
 * Redis trouble is an UNKNOWN verdict, never a failed delivery. */
static const struct ms_verdict *
session_classify(struct lmtpd_session *session, const struct ms_message *msg, const char *user,
                 struct ms_verdict *verdict)
{
	ms_filter_classify(session->env->filter, user, msg->data, msg->size, verdict);
	if (verdict->status == MS_VERDICT_OK)
		ms_log_info("filter: score=%.4f tokens=%u %s", verdict->score, verdict->ntokens,
		            verdict->spam ? "spam" : "ham");
	else
		ms_log_info("filter: unknown (%s): delivered unfiltered", verdict->reason);
	return verdict;
}

static enum ms_deliver_status
session_deliver_rcpt(struct lmtpd_session *session, struct smtp_server_transaction *trans,
                     struct smtp_server_recipient *rcpt, const struct ms_message *msg,
                     const struct ms_verdict *verdict)
{
	const struct smtp_address *orcpt = rcpt->params.orcpt.addr;
	struct ms_deliver_result result;
	struct ms_verdict own_verdict;
	const struct lmtpd_reply *reply;
	struct ms_envelope env;
	enum ms_deliver_status status;

	i_zero(&env);
	i_zero(&result);
	env.sender =
	        smtp_address_isnull(trans->mail_from) ? "" : smtp_address_encode(trans->mail_from);
	env.rcpt = rcpt_address(rcpt->path);
	env.orig_rcpt = orcpt == NULL ? NULL : smtp_address_encode(orcpt);
	if (session->env->cfg->per_user)
		verdict = session_classify(session, msg, env.rcpt, &own_verdict);
	status = ms_deliver_message(session->env->deliver, &env, msg, verdict, &result);
	reply = reply_for(status);
	if (status == MS_DELIVER_OK)
		ms_log_info("delivered to %s: %s", str_sanitize_utf8(env.rcpt, 128), result.path);
	else
		ms_log_info("%s: %u %s %s", str_sanitize_utf8(env.rcpt, 128), reply->code,
		            reply->enh, reply_text(reply, &result));
	smtp_server_recipient_reply(rcpt, reply->code, reply->enh, "%s",
	                            reply_text(reply, &result));
	return status;
}

static void
session_deliver(struct lmtpd_session *session, struct smtp_server_transaction *trans)
{
	struct smtp_server_recipient *rcpt;
	const struct ms_verdict *verdict = NULL;
	struct ms_verdict shared_verdict;
	struct ms_message msg;

	if (ms_msgbuf_view(session->msg, &msg.data, &msg.size) < 0) {
		struct ms_deliver_result result;

		i_zero(&result);
		ms_log_error("reading back the message: %s", strerror(errno));
		session_reply_all(trans, MS_DELIVER_TEMPFAIL, &result);
		return;
	}
	if (!session->env->cfg->per_user)
		verdict = session_classify(session, &msg, NULL, &shared_verdict);
	array_foreach_elem(&trans->rcpt_to, rcpt)
	{
		T_BEGIN
		{
			(void)session_deliver_rcpt(session, trans, rcpt, &msg, verdict);
		}
		T_END;
	}
}

/* Why the message cannot be delivered to anyone, or OK. Decided while the
 * data streams in, answered only after its end: failing the command in mid
 * stream trips lib-smtp (2.3.19) when the client pipelines behind it. */
static enum ms_deliver_status
session_data_status(struct lmtpd_session *session, struct ms_deliver_result *result)
{
	int error = session->store_errno;

	if (session->too_big) {
		i_strocpy(result->reason, "Message too big for system", sizeof(result->reason));
		return MS_DELIVER_TOOBIG;
	}
	if (error == 0)
		return MS_DELIVER_OK;
	ms_log_error("storing the message data: %s", strerror(error));
	if (error == ENOSPC || error == EDQUOT)
		return MS_DELIVER_DISKFULL;
	return MS_DELIVER_TEMPFAIL;
}

static void
session_data_append(struct lmtpd_session *session, const unsigned char *data, size_t size)
{
	size_t max = session->env->cfg->max_message_size;

	if (session->too_big || session->store_errno != 0)
		return; /* the rest is read and dropped */
	if (max > 0 && ms_msgbuf_size(session->msg) + size > max)
		session->too_big = TRUE;
	else if (ms_msgbuf_append(session->msg, data, size) < 0)
		session->store_errno = errno;
}

static int
session_cmd_data_continue(void *context, struct smtp_server_cmd_ctx *cmd ATTR_UNUSED,
                          struct smtp_server_transaction *trans)
{
	struct lmtpd_session *session = context;
	struct istream *input = session->data_input;
	struct ms_deliver_result result;
	enum ms_deliver_status status;
	const unsigned char *data;
	size_t size;
	ssize_t ret;

	while ((ret = i_stream_read_more(input, &data, &size)) > 0) {
		session_data_append(session, data, size);
		i_stream_skip(input, size);
	}
	if (ret == 0)
		return 0;
	if (input->stream_errno != 0)
		return -1; /* client gone or parser limit: lib-smtp replies/closes */
	i_zero(&result);
	if ((status = session_data_status(session, &result)) != MS_DELIVER_OK)
		session_reply_all(trans, status, &result);
	else
		session_deliver(session, trans);
	return 0;
}

static void
session_close_cb(struct lmtpd_session *session)
{
	timeout_remove(&session->to_close);
	lmtpd_session_terminate(session);
}

/* Never close the connection from inside lib-smtp's own callbacks. */
static void
session_close_later(struct lmtpd_session *session)
{
	if (session->to_close == NULL)
		session->to_close = timeout_add_short(0, session_close_cb, session);
}

static void
session_trans_start(void *context, struct smtp_server_transaction *trans ATTR_UNUSED)
{
	struct lmtpd_session *session = context;

	session->in_transaction = TRUE;
}

static void
session_trans_free(void *context, struct smtp_server_transaction *trans ATTR_UNUSED)
{
	struct lmtpd_session *session = context;

	session->in_transaction = FALSE;
	i_stream_unref(&session->data_input);
	if (session->msg != NULL)
		ms_msgbuf_reset(session->msg);
	if (session->shutting_down)
		session_close_later(session);
}

static void
session_disconnect(void *context, const char *reason)
{
	struct lmtpd_session *session = context;

	i_stream_unref(&session->data_input);
	ms_log_debug("client disconnected: %s", reason == NULL ? "" : reason);
}

static void
session_free(void *context)
{
	struct lmtpd_session *session = context;

	timeout_remove(&session->to_close);
	i_stream_unref(&session->data_input);
	ms_msgbuf_free(&session->msg);
	lmtpd_server_session_freed(session->server, session);
	i_free(session);
}

static const struct smtp_server_callbacks lmtpd_session_callbacks = {
        .conn_cmd_helo = session_cmd_helo,
        .conn_cmd_mail = session_cmd_mail,
        .conn_cmd_rcpt = session_cmd_rcpt,
        .conn_cmd_data_begin = session_cmd_data_begin,
        .conn_cmd_data_continue = session_cmd_data_continue,
        .conn_trans_start = session_trans_start,
        .conn_trans_free = session_trans_free,
        .conn_disconnect = session_disconnect,
        .conn_free = session_free,
};

struct lmtpd_session *
lmtpd_session_create(const struct lmtpd_env *env, struct lmtpd_server *server, int fd)
{
	struct lmtpd_session *session;

	session = i_new(struct lmtpd_session, 1);
	session->env = env;
	session->server = server;
	session->conn = smtp_server_connection_create(env->smtp, fd, fd, NULL, 0, FALSE, NULL,
	                                              &lmtpd_session_callbacks, session);
	/* SIZE= reaches session_cmd_mail as an extension parameter */
	smtp_server_connection_register_mail_param(session->conn, "SIZE");
	smtp_server_connection_start(session->conn);
	return session;
}

void
lmtpd_session_shutdown(struct lmtpd_session *session)
{
	session->shutting_down = TRUE;
	if (!session->in_transaction)
		session_close_later(session);
}

void
lmtpd_session_terminate(struct lmtpd_session *session)
{
	struct smtp_server_connection *conn = session->conn;

	smtp_server_connection_terminate(&conn, "4.3.2", "Shutting down");
}
