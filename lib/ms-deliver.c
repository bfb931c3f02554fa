#include "ms-deliver.h"
#include "ms-config.h"
#include "ms-filter.h"
#include "ms-header.h"
#include "ms-log.h"
#include "ms-maildir.h"
#include "ms-path.h"
#include "ms-privs.h"
#include "ms-sieve-client.h"
#include "ms-userdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MS_HOST_MAX 256

#define MS_SIEVE_TIMEOUT_SECS 60
#define MS_SIEVE_DUP_MAX      10000

struct ms_deliver {
	const struct ms_config *cfg;
	struct ms_userdb *userdb;
	struct ms_sieve_client *sieve; /* NULL: sieve_enabled = no */
	char host[MS_HOST_MAX * 4];    /* escaped for file names */
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
	if (cfg->sieve_enabled && (ctx->sieve = ms_sieve_client_create(
	                                   cfg->sieve_worker, MS_SIEVE_TIMEOUT_SECS)) == NULL) {
		ms_log_error("out of memory");
		ms_deliver_destroy(&ctx);
		return NULL;
	}
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
	ms_sieve_client_destroy(&ctx->sieve);
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

static int
user_maildir(const struct ms_deliver *ctx, const struct ms_user *user, char *dir, size_t dirlen,
             char *err, size_t errlen)
{
	const struct ms_path_vars vars = {user->name, user->local, user->domain, user->home};
	const char *location = user->mail[0] != '\0' ? user->mail : ctx->cfg->mail_location;

	return ms_path_expand(location, &vars, dir, dirlen, err, errlen);
}

/* Write the rewritten message into the user's Maildir, as the user. flags
 * are Maildir info letters ("" for none). */
static enum ms_deliver_status
write_message(struct ms_deliver *ctx, const struct ms_user *user, const char *folder,
              const char *flags, const char *keywords, const struct ms_maildir_chunk *chunks,
              size_t count, struct ms_deliver_result *result)
{
	struct ms_privs saved;
	char dir[1024], err[512];
	enum ms_maildir_status status;

	if (user_maildir(ctx, user, dir, sizeof(dir), err, sizeof(err)) < 0) {
		ms_log_error("%s: %s", user->name, err);
		return set_result(result, MS_DELIVER_TEMPFAIL, err);
	}
	if (ms_privs_become(user->uid, user->gid, &saved, err, sizeof(err)) < 0) {
		ms_log_error("%s: %s", user->name, err);
		return set_result(result, MS_DELIVER_TEMPFAIL, err);
	}
	status = ms_maildir_deliver_flags(dir, folder, ctx->host, flags, keywords, chunks, count,
	                                  result->path, sizeof(result->path), err, sizeof(err));
	ms_privs_restore(&saved);
	if (status != MS_MAILDIR_OK) {
		ms_log_error("%s: %s", user->name, err);
		return set_result(result, maildir_status(status), err);
	}
	return set_result(result, MS_DELIVER_OK, "delivered");
}

/* imap4flags system flags as Maildir info letters, in their sorted order. */
static void
maildir_flags(unsigned int flags, char *buf)
{
	static const struct {
		unsigned int flag;
		char letter;
	} letters[] = {
	        {MS_SIEVE_FLAG_DRAFT, 'D'},    {MS_SIEVE_FLAG_FLAGGED, 'F'},
	        {MS_SIEVE_FLAG_ANSWERED, 'R'}, {MS_SIEVE_FLAG_SEEN, 'S'},
	        {MS_SIEVE_FLAG_DELETED, 'T'},
	};
	size_t i, n = 0;

	for (i = 0; i < sizeof(letters) / sizeof(letters[0]); i++) {
		if ((flags & letters[i].flag) != 0)
			buf[n++] = letters[i].letter;
	}
	buf[n] = '\0';
}

/* The folder store i goes to: a folder name the Maildir cannot hold goes
 * to INBOX, as Pigeonhole keeps a message it could not file. */
static const char *
store_folder(const struct ms_sieve_outcome *out, unsigned int i)
{
	const char *folder = out->stores[i].fs_folder;

	return strcasecmp(folder, "INBOX") == 0 || ms_path_safe_folder(folder) ? folder : "INBOX";
}

/* Did an earlier store go to the folder of store i? (Only INBOX can come
 * twice: Sieve merges stores by folder name.) */
static bool
folder_taken(const struct ms_sieve_outcome *out, unsigned int i)
{
	const char *folder = store_folder(out, i);
	unsigned int j;

	for (j = 0; j < i; j++) {
		const char *other = store_folder(out, j);

		if (strcmp(other, folder) == 0 ||
		    (strcasecmp(other, "INBOX") == 0 && strcasecmp(folder, "INBOX") == 0))
			return true;
	}
	return false;
}

/* The last store that gets the staged file itself (not a copy of its own). */
static unsigned int
last_publish(const struct ms_sieve_outcome *out)
{
	unsigned int i = out->n_stores;

	while (i > 0 && folder_taken(out, i - 1))
		i--;
	return i - 1;
}

/* Carry out Sieve's decisions: link the staged message into each folder,
 * the last one by a rename (a second copy in one folder gets a name of its
 * own). Runs as the user. */
static enum ms_deliver_status
publish_stores(const struct ms_user *user, struct ms_maildir_staged *staged,
               const struct ms_sieve_outcome *out, const struct ms_maildir_chunk *chunks,
               size_t count, struct ms_deliver_result *result)
{
	char flags[8], first[sizeof(result->path)] = "", err[512];
	enum ms_maildir_status status = MS_MAILDIR_OK;
	unsigned int i, last = last_publish(out);

	for (i = 0; i < out->n_stores && status == MS_MAILDIR_OK; i++) {
		const char *folder = store_folder(out, i);

		if (folder != out->stores[i].fs_folder)
			ms_log_warning("%s: sieve: folder \"%.64s\" cannot be a Maildir folder: "
			               "INBOX instead",
			               user->name, out->stores[i].folder);
		maildir_flags(out->stores[i].flags, flags);
		if (folder_taken(out, i))
			status = ms_maildir_deliver_flags(staged->dir, folder, staged->host, flags,
			                                  out->stores[i].keywords, chunks, count,
			                                  result->path, sizeof(result->path), err,
			                                  sizeof(err));
		else
			status = ms_maildir_publish(staged, folder, flags, out->stores[i].keywords,
			                            i == last, chunks, count, result->path,
			                            sizeof(result->path), err, sizeof(err));
		if (status == MS_MAILDIR_OK && first[0] == '\0')
			snprintf(first, sizeof(first), "%s", result->path);
	}
	if (status != MS_MAILDIR_OK) {
		ms_log_error("%s: %s", user->name, err);
		return set_result(result, maildir_status(status), err);
	}
	snprintf(result->path, sizeof(result->path), "%s", first);
	return set_result(result, MS_DELIVER_OK, "delivered");
}

/* Write the message into the Maildir's tmp/ as the user (while the worker
 * runs the scripts: the write and its fsync cost the delivery no time on
 * top of Sieve's). */
static enum ms_maildir_status
stage_message(struct ms_deliver *ctx, const struct ms_user *user, const char *dir,
              const struct ms_maildir_chunk *chunks, size_t count, struct ms_maildir_staged *staged,
              char *err, size_t errlen)
{
	struct ms_privs saved;
	enum ms_maildir_status status;

	staged->tmp[0] = '\0';
	if (ms_privs_become(user->uid, user->gid, &saved, err, errlen) < 0)
		return MS_MAILDIR_TEMPFAIL;
	status = ms_maildir_stage(dir, ctx->host, chunks, count, staged, err, errlen);
	ms_privs_restore(&saved);
	return status;
}

/* Remove what is left in tmp/ (nothing kept it, or Sieve failed). */
static void
drop_staged(const struct ms_user *user, struct ms_maildir_staged *staged)
{
	struct ms_privs saved;
	char err[512];

	if (staged->tmp[0] == '\0')
		return;
	if (ms_privs_become(user->uid, user->gid, &saved, err, sizeof(err)) < 0) {
		ms_log_error("%s: %s (%s stays in tmp/)", user->name, err, staged->tmp);
		return;
	}
	ms_maildir_unstage(staged);
	ms_privs_restore(&saved);
}

/* What the outcome means for this delivery, the stores published. Takes the
 * staged file away (a link in each folder remains). */
static enum ms_deliver_status
sieve_result(const struct ms_user *user, const struct ms_sieve_outcome *out,
             struct ms_maildir_staged *staged, enum ms_maildir_status stage_status,
             const char *stage_err, const struct ms_maildir_chunk *chunks, size_t count,
             struct ms_deliver_result *result)
{
	enum ms_deliver_status status;
	struct ms_privs saved;
	char err[512];

	if (out->status == MS_SIEVE_TEMPFAIL) {
		ms_log_error("%s: sieve: %s", user->name, out->reason);
		status = set_result(result, MS_DELIVER_TEMPFAIL, "sieve: temporary failure");
	} else if (out->status == MS_SIEVE_REJECT) {
		ms_log_info("%s: sieve: rejected: %s", user->name, out->reason);
		status = set_result(result, MS_DELIVER_REJECTED, out->reason);
	} else if (out->n_stores == 0) {
		ms_log_info("%s: sieve: discarded", user->name);
		status = set_result(result, MS_DELIVER_OK, "discarded by sieve");
	} else if (stage_status != MS_MAILDIR_OK) {
		ms_log_error("%s: %s", user->name, stage_err);
		status = set_result(result, maildir_status(stage_status), stage_err);
	} else if (ms_privs_become(user->uid, user->gid, &saved, err, sizeof(err)) < 0) {
		ms_log_error("%s: %s", user->name, err);
		status = set_result(result, MS_DELIVER_TEMPFAIL, err);
	} else {
		status = publish_stores(user, staged, out, chunks, count, result);
		ms_maildir_unstage(staged);
		ms_privs_restore(&saved);
	}
	drop_staged(user, staged);
	return status;
}

static unsigned char *
join_chunks(const struct ms_maildir_chunk *chunks, size_t count, size_t *size_r)
{
	unsigned char *buf;
	size_t i, size = 0;

	for (i = 0; i < count; i++)
		size += chunks[i].size;
	if ((buf = malloc(size + 1)) == NULL)
		return NULL;
	for (i = 0, size = 0; i < count; i++) {
		memcpy(buf + size, chunks[i].data, chunks[i].size);
		size += chunks[i].size;
	}
	*size_r = size;
	return buf;
}

/* Hands the message to the Sieve worker. Returns 0, or -1 with result set. */
static int
sieve_send(struct ms_deliver *ctx, const struct ms_envelope *env, const struct ms_user *user,
           const char *home, const struct ms_maildir_chunk *chunks, size_t count,
           struct ms_deliver_result *result)
{
	const struct ms_config *cfg = ctx->cfg;
	const struct ms_sieve_settings set = {
	        cfg->sieve,         cfg->sieve_dir,          cfg->sieve_before, cfg->sieve_after,
	        cfg->sendmail_path, cfg->postmaster_address, cfg->hostname,     MS_SIEVE_DUP_MAX,
	};
	struct ms_sieve_request req;
	unsigned char *msg;
	char err[512];
	int ret;

	memset(&req, 0, sizeof(req));
	req.user = user->name;
	req.home = home;
	req.sender = env->sender != NULL ? env->sender : "";
	req.rcpt = env->rcpt;
	req.orig_rcpt = env->orig_rcpt;
	req.mailbox = env->mailbox != NULL && env->mailbox[0] != '\0' ? env->mailbox : NULL;
	if ((msg = join_chunks(chunks, count, &req.msg_size)) == NULL) {
		set_result(result, MS_DELIVER_TEMPFAIL, "out of memory");
		return -1;
	}
	req.msg = msg;
	ret = ms_sieve_client_send(ctx->sieve, &set, &req, user->uid, user->gid, err, sizeof(err));
	free(msg);
	if (ret < 0) {
		ms_log_error("%s: %s", user->name, err);
		set_result(result, MS_DELIVER_TEMPFAIL, err);
	}
	return ret;
}

/* Runs the user's Sieve scripts on the message as it will be stored (with
 * mailsift's headers) and stores what they decide. Returns 0 when no script
 * applies (the caller delivers as usual), 1 when *status_r is the outcome. */
static int
sieve_deliver(struct ms_deliver *ctx, const struct ms_envelope *env, const struct ms_user *user,
              const struct ms_maildir_chunk *chunks, size_t count, struct ms_deliver_result *result,
              enum ms_deliver_status *status_r)
{
	const struct ms_sieve_settings scripts = {.script = ctx->cfg->sieve,
	                                          .before = ctx->cfg->sieve_before,
	                                          .after = ctx->cfg->sieve_after};
	struct ms_maildir_staged *staged;
	struct ms_sieve_outcome *out;
	enum ms_maildir_status stage_status;
	char dir[1024], err[512], stage_err[512];
	const char *home;
	bool have_dir;

	have_dir = user_maildir(ctx, user, dir, sizeof(dir), err, sizeof(err)) == 0;
	home = user->home[0] != '\0' ? user->home : (have_dir ? dir : "");
	if (!ms_sieve_has_scripts(&scripts, home))
		return 0;
	if (!have_dir) {
		ms_log_error("%s: %s", user->name, err);
		*status_r = set_result(result, MS_DELIVER_TEMPFAIL, err);
		return 1;
	}
	if ((out = malloc(sizeof(*out))) == NULL || (staged = malloc(sizeof(*staged))) == NULL) {
		free(out);
		*status_r = set_result(result, MS_DELIVER_TEMPFAIL, "out of memory");
		return 1;
	}
	if (sieve_send(ctx, env, user, home, chunks, count, result) < 0) {
		*status_r = result->status;
	} else {
		stage_status = stage_message(ctx, user, dir, chunks, count, staged, stage_err,
		                             sizeof(stage_err));
		if (ms_sieve_client_receive(ctx->sieve, out, err, sizeof(err)) < 0) {
			ms_log_error("%s: %s", user->name, err);
			*status_r = set_result(result, MS_DELIVER_TEMPFAIL, err);
			drop_staged(user, staged);
		} else {
			*status_r = sieve_result(user, out, staged, stage_status, stage_err, chunks,
			                         count, result);
		}
	}
	free(staged);
	free(out);
	return 1;
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
		if (ctx->sieve == NULL ||
		    sieve_deliver(ctx, env, &user, chunks, 3, result, &status) == 0)
			status = write_message(ctx, &user, choose_folder(ctx->cfg, env, verdict),
			                       "", NULL, chunks, 3, result);
	}
	free(top);
	free(hdr);
	return status;
}
