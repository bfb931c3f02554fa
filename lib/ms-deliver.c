#include "ms-deliver.h"
#include "ms-config.h"
#include "ms-filter.h"
#include "ms-header.h"
#include "ms-log.h"
#include "ms-maildir.h"
#include "ms-path.h"
#include "ms-privs.h"
#include "ms-userdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MS_HOST_MAX 256

struct ms_deliver {
	const struct ms_config *cfg;
	struct ms_userdb *userdb;
	char host[MS_HOST_MAX * 4]; /* escaped for file names */
};

static int
resolve_defaults(const struct ms_config *cfg, uid_t *uid_r, gid_t *gid_r)
{
	if (ms_userdb_parse_uid(cfg->user, uid_r) < 0) {
		ms_log_error("config: user %s: no such user", cfg->user);
		return -1;
	}
	if (ms_userdb_parse_gid(cfg->group, gid_r) < 0) {
		ms_log_error("config: group %s: no such group", cfg->group);
		return -1;
	}
	return 0;
}

/* Catch a bad mail_location at startup rather than at the first mail. */
static int
check_location(const char *location)
{
	static const struct ms_path_vars sample = {"user@example.test", "user", "example.test",
	                                           "/home/user"};
	char path[1024], err[512];

	if (ms_path_expand(location, &sample, path, sizeof(path), err, sizeof(err)) < 0) {
		ms_log_error("config: %s", err);
		return -1;
	}
	return 0;
}

struct ms_deliver *
ms_deliver_create(const struct ms_config *cfg)
{
	struct ms_deliver *ctx;
	char host[MS_HOST_MAX], err[512];
	uid_t uid;
	gid_t gid;

	if (resolve_defaults(cfg, &uid, &gid) < 0 || check_location(cfg->mail_location) < 0)
		return NULL;
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
		ms_log_error("out of memory");
		return NULL;
	}
	ctx->cfg = cfg;
	if ((ctx->userdb = ms_userdb_create(cfg->userdb, uid, gid, err, sizeof(err))) == NULL) {
		ms_log_error("config: %s", err);
		free(ctx);
		return NULL;
	}
	if (cfg->hostname[0] != '\0')
		snprintf(host, sizeof(host), "%s", cfg->hostname);
	else if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	ms_maildir_escape_host(host, ctx->host, sizeof(ctx->host));
	return ctx;
}

void
ms_deliver_destroy(struct ms_deliver **ctxp)
{
	struct ms_deliver *ctx = *ctxp;

	if (ctx == NULL)
		return;
	*ctxp = NULL;
	ms_userdb_destroy(&ctx->userdb);
	free(ctx);
}

static enum ms_deliver_status
set_result(struct ms_deliver_result *result, enum ms_deliver_status status, const char *reason)
{
	size_t len = strlen(reason);

	/* truncated on purpose: a reply line, not the whole story (the log has it) */
	if (len >= sizeof(result->reason))
		len = sizeof(result->reason) - 1;
	memcpy(result->reason, reason, len);
	result->reason[len] = '\0';
	result->status = status;
	return status;
}

static enum ms_deliver_status
lookup(struct ms_deliver *ctx, const char *rcpt, struct ms_user *user,
       struct ms_deliver_result *result)
{
	char err[512];

	switch (ms_userdb_lookup(ctx->userdb, rcpt, user, err, sizeof(err))) {
	case MS_USERDB_FOUND:
		return set_result(result, MS_DELIVER_OK, "user found");
	case MS_USERDB_NOUSER:
		return set_result(result, MS_DELIVER_NOUSER, err);
	case MS_USERDB_TEMPFAIL:
		break;
	}
	ms_log_error("%s", err);
	return set_result(result, MS_DELIVER_TEMPFAIL, err);
}

enum ms_deliver_status
ms_deliver_check_rcpt(struct ms_deliver *ctx, const char *rcpt, struct ms_deliver_result *result)
{
	struct ms_user user;

	result->path[0] = '\0';
	return lookup(ctx, rcpt, &user, result);
}

/* env->mailbox if it is a safe folder name, else Junk for spam, else
 * INBOX (NULL). */
static const char *
choose_folder(const struct ms_config *cfg, const struct ms_envelope *env,
              const struct ms_verdict *verdict)
{
	if (env->mailbox != NULL && env->mailbox[0] != '\0') {
		if (strcasecmp(env->mailbox, "INBOX") != 0 && ms_path_safe_folder(env->mailbox))
			return env->mailbox;
		if (strcasecmp(env->mailbox, "INBOX") != 0)
			ms_log_warning("mailbox \"%.64s\" is not a safe folder name: using INBOX",
			               env->mailbox);
		return NULL;
	}
	if (verdict != NULL && verdict->status == MS_VERDICT_OK && verdict->spam &&
	    ms_path_safe_folder(cfg->junk_mailbox))
		return cfg->junk_mailbox;
	return NULL;
}

/* Append text to buf. In an envelope address, control characters (a
 * header injection from a command line) become '?'. False if it does not
 * fit. */
static bool
append(char *buf, size_t bufsize, size_t *used, const char *text, bool address)
{
	for (; *text != '\0'; text++) {
		if (*used + 1 >= bufsize)
			return false;
		if (address && ((unsigned char)*text < 0x20 || *text == 0x7f))
			buf[(*used)++] = '?';
		else
			buf[(*used)++] = *text;
	}
	buf[*used] = '\0';
	return true;
}

/* Return-Path, Delivered-To and the verdict's X-Spam-* lines. */
static int
delivery_headers(const struct ms_envelope *env, const struct ms_verdict *verdict,
                 bool add_delivered_to, char *buf, size_t bufsize)
{
	const char *sender = env->sender != NULL ? env->sender : "";
	size_t used = 0;
	bool ok;
	int len;

	ok = append(buf, bufsize, &used, "Return-Path: <", false) &&
	     append(buf, bufsize, &used, sender, true) && append(buf, bufsize, &used, ">\n", false);
	if (ok && add_delivered_to)
		ok = append(buf, bufsize, &used, "Delivered-To: ", false) &&
		     append(buf, bufsize, &used, env->rcpt, true) &&
		     append(buf, bufsize, &used, "\n", false);
	if (!ok)
		return -1;
	if (verdict != NULL) {
		if ((len = ms_verdict_headers(verdict, buf + used, bufsize - used)) < 0)
			return -1;
		used += (size_t)len;
	}
	return (int)used;
}

static enum ms_deliver_status
maildir_status(enum ms_maildir_status status)
{
	switch (status) {
	case MS_MAILDIR_OK:
		return MS_DELIVER_OK;
	case MS_MAILDIR_DISKFULL:
		return MS_DELIVER_DISKFULL;
	case MS_MAILDIR_TEMPFAIL:
		break;
	}
	return MS_DELIVER_TEMPFAIL;
}

/* Write the rewritten message into the user's Maildir, as the user. */
static enum ms_deliver_status
write_message(struct ms_deliver *ctx, const struct ms_user *user, const char *folder,
              const struct ms_maildir_chunk *chunks, size_t count, struct ms_deliver_result *result)
{
	const struct ms_path_vars vars = {user->name, user->local, user->domain, user->home};
	const char *location = user->mail[0] != '\0' ? user->mail : ctx->cfg->mail_location;
	struct ms_privs saved;
	char dir[1024], err[512];
	enum ms_maildir_status status;

	if (ms_path_expand(location, &vars, dir, sizeof(dir), err, sizeof(err)) < 0) {
		ms_log_error("%s: %s", user->name, err);
		return set_result(result, MS_DELIVER_TEMPFAIL, err);
	}
	if (ms_privs_become(user->uid, user->gid, &saved, err, sizeof(err)) < 0) {
		ms_log_error("%s: %s", user->name, err);
		return set_result(result, MS_DELIVER_TEMPFAIL, err);
	}
	status = ms_maildir_deliver(dir, folder, ctx->host, chunks, count, result->path,
	                            sizeof(result->path), err, sizeof(err));
	ms_privs_restore(&saved);
	if (status != MS_MAILDIR_OK) {
		ms_log_error("%s: %s", user->name, err);
		return set_result(result, maildir_status(status), err);
	}
	return set_result(result, MS_DELIVER_OK, "delivered");
}

enum ms_deliver_status
ms_deliver_message(struct ms_deliver *ctx, const struct ms_envelope *env,
                   const struct ms_message *msg, const struct ms_verdict *verdict,
                   struct ms_deliver_result *result)
{
	struct ms_maildir_chunk chunks[3];
	struct ms_user user;
	size_t hdrlen;
	unsigned char *hdr;
	char *top;
	size_t topsize;
	int toplen;
	enum ms_deliver_status status;

	result->path[0] = '\0';
	if (msg->size > ctx->cfg->max_message_size)
		return set_result(result, MS_DELIVER_TOOBIG, "message exceeds max_message_size");
	if ((status = lookup(ctx, env->rcpt, &user, result)) != MS_DELIVER_OK)
		return status;
	hdrlen = ms_header_length(msg->data, msg->size);
	topsize = 1024 + strlen(env->rcpt) + (env->sender != NULL ? strlen(env->sender) : 0);
	if ((hdr = malloc(hdrlen + 1)) == NULL || (top = malloc(topsize)) == NULL) {
		free(hdr);
		return set_result(result, MS_DELIVER_TEMPFAIL, "out of memory");
	}
	toplen = delivery_headers(env, verdict,
	                          !ms_header_top_delivered_to(msg->data, hdrlen, env->rcpt), top,
	                          topsize);
	if (toplen < 0)
		status = set_result(result, MS_DELIVER_TEMPFAIL, "delivery headers too long");
	else {
		chunks[0] = (struct ms_maildir_chunk){(const unsigned char *)top, (size_t)toplen};
		chunks[1] =
		        (struct ms_maildir_chunk){hdr, ms_header_filter(msg->data, hdrlen, hdr)};
		chunks[2] = (struct ms_maildir_chunk){msg->data + hdrlen, msg->size - hdrlen};
		status = write_message(ctx, &user, choose_folder(ctx->cfg, env, verdict), chunks, 3,
		                       result);
	}
	free(top);
	free(hdr);
	return status;
}
