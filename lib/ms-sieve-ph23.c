/* ms-sieve.h on Pigeonhole 0.5 (Dovecot 2.3). Every Pigeonhole and
 * lib-storage call of mailsift lives in this file: Dovecot 2.4 reworked this
 * API, and its port is a second file behind the same header.
 *
 * How the actions reach mailsift's Maildir writer: the script environment has
 * no mail user, so Pigeonhole's own store action stores nothing (its
 * "disabled" mode), while imap4flags, :copy and :create still run on the
 * store transaction. A side effect registered on every store (fileinto, keep,
 * the implicit keep) reads the folder and the final flags when the store
 * commits and records it as a decision. The failure keep (after a runtime
 * error) is an action of our own that records the default mailbox. */

#include "lib.h"
#include "array.h"
#include "str.h"
#include "ioloop.h"
#include "hostpid.h"
#include "istream.h"
#include "ostream.h"
#include "buffer.h"
#include "master-service.h"
#include "mail-storage.h"
#include "mail-storage-service.h"
#include "mail-user.h"
#include "message-address.h"
#include "smtp-address.h"
#include "imap-utf7.h"

#include "mail-raw.h"
#include "sieve.h"
#include "sieve-script.h"
#include "sieve-result.h"
#include "sieve-actions.h"
#include "sieve-interpreter.h"
#include "sieve-execute.h"
#include "sieve-error.h"

#include "ms-sieve.h"
#include "ms-dupdb.h"
#include "ms-sendmail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define MS_SIEVE_MAX_USER_ERRORS 10
#define MS_SIEVE_MAX_SCRIPTS     3
#define MS_SIEVE_CACHED_USERS    8

struct ms_sieve_global {
	struct mail_storage_service_ctx *storage_service;
	struct mail_storage_service_user *service_user;
	struct mail_user *dovecot_user;
	struct mail_user *raw_user;
};

static struct ms_sieve_global ms_sieve_global;

struct ms_sieve_run_ctx {
	const struct ms_sieve_settings *set;
	const struct ms_sieve_request *req;
	struct ms_sieve_outcome *out;
	const char *user_script; /* expanded path of the user's script */
	const char *personal;    /* "file:DIR;active=SCRIPT" for include */
	const char *dup_path;
	struct ms_sieve_cached_script *scripts; /* the instance's compiled ones */
};

/* The worker serves delivery after delivery: each user's Sieve instance
 * and compiled scripts stay for the user's next delivery while the settings
 * stay the same, and a script is compiled again only when its file changes
 * (path + mtime, size, inode). The MS_SIEVE_CACHED_USERS users served last
 * are kept; the next one replaces the least recently served. */
struct ms_sieve_cached_script {
	char *path;
	struct stat st;
	struct sieve_binary *sbin;
};

struct ms_sieve_cache {
	char *key; /* user, home and every setting the instance was made with */
	struct sieve_instance *svinst;
	struct ms_sieve_run_ctx ctx; /* the instance's callback context */
	char *personal, *user_script, *dup_path, *hostname;
	struct ms_sieve_cached_script scripts[MS_SIEVE_MAX_SCRIPTS];
	unsigned long last_used;
};

static struct ms_sieve_cache ms_sieve_cache[MS_SIEVE_CACHED_USERS];
static unsigned long ms_sieve_cache_clock;

static void ms_sieve_cache_clear(struct ms_sieve_cache *c);

struct ms_sieve_smtp {
	pool_t pool;
	struct ms_sieve_run_ctx *ctx;
	const char *from;
	ARRAY_TYPE(const_string) rcpts;
	buffer_t *data;
	struct ostream *output;
};

/*
 * Process setup
 */

/* A detached daemon's stderr is /dev/null: then the worker logs to syslog
 * like its parent. */
static bool
ms_sieve_stderr_is_null(void)
{
	struct stat st, null_st;

	return fstat(STDERR_FILENO, &st) < 0 ||
	       (stat("/dev/null", &null_st) == 0 && S_ISCHR(st.st_mode) &&
	        st.st_rdev == null_st.st_rdev);
}

int
ms_sieve_init(char *err, size_t errlen)
{
	struct ms_sieve_global *g = &ms_sieve_global;
	struct mail_storage_service_input input;
	const char *error;
	int argc = 1;
	char *args[] = {(char *)"mailsift-sieve", NULL};
	char **argv = args;

	/* Dovecot's raw mailbox calls localtime() twice a message; with TZ
	 * unset glibc stat()s /etc/localtime each time to see if it changed.
	 * The same zone, read once for the worker's life. */
	if (getenv("TZ") == NULL && setenv("TZ", ":/etc/localtime", 1) < 0) {
		snprintf(err, errlen, "setenv TZ: %s", strerror(errno));
		return -1;
	}
	master_service = master_service_init("mailsift-sieve",
	                                     MASTER_SERVICE_FLAG_STANDALONE |
	                                             MASTER_SERVICE_FLAG_NO_CONFIG_SETTINGS |
	                                             MASTER_SERVICE_FLAG_DONT_SEND_STATS |
	                                             MASTER_SERVICE_FLAG_NO_INIT_DATASTACK_FRAME |
	                                             MASTER_SERVICE_FLAG_DISABLE_SSL_SET,
	                                     &argc, &argv, "");
	master_service_init_finish(master_service);
	i_set_failure_prefix("mailsift-sieve: ");
	if (ms_sieve_stderr_is_null())
		i_set_failure_syslog("mailsift-sieve", LOG_NDELAY, LOG_MAIL);

	g->storage_service = mail_storage_service_init(
	        master_service, NULL,
	        MAIL_STORAGE_SERVICE_FLAG_NO_CHDIR | MAIL_STORAGE_SERVICE_FLAG_NO_LOG_INIT |
	                MAIL_STORAGE_SERVICE_FLAG_NO_RESTRICT_ACCESS |
	                MAIL_STORAGE_SERVICE_FLAG_NO_NAMESPACES |
	                MAIL_STORAGE_SERVICE_FLAG_NO_PLUGINS |
	                MAIL_STORAGE_SERVICE_FLAG_ALLOW_ROOT);
	i_zero(&input);
	input.module = "mail";
	input.service = "mailsift-sieve";
	input.username = "mailsift";
	if (mail_storage_service_lookup_next(g->storage_service, &input, &g->service_user,
	                                     &g->dovecot_user, &error) <= 0) {
		snprintf(err, errlen, "mail user setup failed: %s", error);
		return -1;
	}
	g->raw_user = mail_raw_user_create(master_service, g->dovecot_user);
	return 0;
}

void
ms_sieve_deinit(void)
{
	struct ms_sieve_global *g = &ms_sieve_global;

	for (unsigned int i = 0; i < MS_SIEVE_CACHED_USERS; i++)
		ms_sieve_cache_clear(&ms_sieve_cache[i]);
	if (g->raw_user != NULL)
		mail_user_unref(&g->raw_user);
	if (g->dovecot_user != NULL)
		mail_user_unref(&g->dovecot_user);
	if (g->service_user != NULL)
		mail_storage_service_user_unref(&g->service_user);
	if (g->storage_service != NULL)
		mail_storage_service_deinit(&g->storage_service);
	if (master_service != NULL)
		master_service_deinit(&master_service);
}

/*
 * Settings: every Sieve setting comes from mailsift, none from dovecot.conf
 */

static const char *
ms_sieve_expand_home(const char *path, const char *home)
{
	if (path == NULL || *path == '\0')
		return NULL;
	if (path[0] == '~' && (path[1] == '/' || path[1] == '\0'))
		return home == NULL ? NULL : t_strconcat(home, path + 1, NULL);
	return path;
}

static const char *
ms_sieve_get_homedir(void *context)
{
	struct ms_sieve_run_ctx *ctx = context;

	return ctx->req->home;
}

static const char *
ms_sieve_get_setting(void *context, const char *identifier)
{
	static const struct {
		const char *key, *value;
	} fixed[] = {
	        /* spamtest reads the filter's X-Spam-Score, a probability */
	        {"sieve_extensions", "+spamtest +spamtestplus +vacation-seconds"},
	        {"sieve_spamtest_status_type", "score"},
	        {"sieve_spamtest_status_header", "X-Spam-Score"},
	        {"sieve_spamtest_max_value", "1.0"},
	        {"recipient_delimiter", "+"},
	};
	struct ms_sieve_run_ctx *ctx = context;
	unsigned int i;

	for (i = 0; i < N_ELEMENTS(fixed); i++) {
		if (strcmp(identifier, fixed[i].key) == 0)
			return fixed[i].value;
	}
	if (strcmp(identifier, "sieve") == 0)
		return ctx->personal;
	/* The user's own address counts as "mine" for vacation, also when
	 * mail arrives for user+detail. */
	if (strcmp(identifier, "sieve_user_email") == 0 && strchr(ctx->req->user, '@') != NULL)
		return ctx->req->user;
	return NULL;
}

static const struct sieve_callbacks ms_sieve_callbacks = {
        .get_homedir = ms_sieve_get_homedir,
        .get_setting = ms_sieve_get_setting,
};

/*
 * Outcome helpers
 */

static void
ms_sieve_add_store(struct ms_sieve_outcome *out, const char *folder, enum mail_flags flags,
                   const ARRAY_TYPE(const_string) * keywords)
{
	struct ms_sieve_store *store = NULL;
	const char *const *kw;
	unsigned int i;

	for (i = 0; i < out->n_stores; i++) {
		if (strcmp(out->stores[i].folder, folder) == 0)
			store = &out->stores[i];
	}
	if (store == NULL) {
		if (out->n_stores == MS_SIEVE_MAX_STORES) {
			i_error("sieve: more than %u folders; ignoring %s", MS_SIEVE_MAX_STORES,
			        folder);
			return;
		}
		store = &out->stores[out->n_stores++];
		i_zero(store);
		i_strocpy(store->folder, folder, sizeof(store->folder));
		T_BEGIN
		{
			string_t *fs_name = t_str_new(64);

			if (imap_utf8_to_utf7(folder, fs_name) == 0)
				i_strocpy(store->fs_folder, str_c(fs_name),
				          sizeof(store->fs_folder));
		}
		T_END;
	}
	if ((flags & MAIL_ANSWERED) != 0)
		store->flags |= MS_SIEVE_FLAG_ANSWERED;
	if ((flags & MAIL_FLAGGED) != 0)
		store->flags |= MS_SIEVE_FLAG_FLAGGED;
	if ((flags & MAIL_DELETED) != 0)
		store->flags |= MS_SIEVE_FLAG_DELETED;
	if ((flags & MAIL_SEEN) != 0)
		store->flags |= MS_SIEVE_FLAG_SEEN;
	if ((flags & MAIL_DRAFT) != 0)
		store->flags |= MS_SIEVE_FLAG_DRAFT;
	if (keywords == NULL || !array_is_created(keywords))
		return;
	array_foreach(keywords, kw)
	{
		size_t len = strlen(store->keywords);

		if (*kw == NULL || **kw == '\0')
			continue;
		if (len + strlen(*kw) + 2 > sizeof(store->keywords))
			break;
		if (len > 0)
			store->keywords[len++] = ' ';
		i_strocpy(store->keywords + len, *kw, sizeof(store->keywords) - len);
	}
}

/*
 * Capturing the stores
 */

static void
ms_capture_post_commit(const struct sieve_side_effect *seffect,
                       const struct sieve_action_exec_env *aenv, void *tr_context,
                       void *se_tr_context ATTR_UNUSED, int commit_status)
{
	struct ms_sieve_run_ctx *ctx = seffect->context;
	struct act_store_transaction *trans = tr_context;

	if (commit_status != SIEVE_EXEC_OK || trans == NULL)
		return;
	ms_sieve_add_store(ctx->out, trans->mailbox_name, trans->flags_altered ? trans->flags : 0,
	                   trans->flags_altered ? &trans->keywords : NULL);
	(void)aenv;
}

static const struct sieve_side_effect_def ms_capture_seffect = {
        SIEVE_OBJECT("mailsift-capture", NULL, 0),
        .to_action = &act_store,
        .post_commit = ms_capture_post_commit,
};

/* The keep after a failure: the default mailbox, no flags, as Pigeonhole. */
static int
ms_failure_keep_commit(const struct sieve_action_exec_env *aenv, void *tr_context ATTR_UNUSED)
{
	const struct sieve_script_env *senv = aenv->exec_env->scriptenv;
	struct ms_sieve_run_ctx *ctx = senv->script_context;

	ms_sieve_add_store(ctx->out, SIEVE_SCRIPT_DEFAULT_MAILBOX(senv), 0, NULL);
	ctx->out->script_error = TRUE;
	return SIEVE_EXEC_OK;
}

static const struct sieve_action_def ms_failure_keep = {
        .name = "keep",
        .flags = SIEVE_ACTFLAG_TRIES_DELIVER | SIEVE_ACTFLAG_MAIL_STORAGE,
        .commit = ms_failure_keep_commit,
};

/*
 * Script environment callbacks: sendmail, duplicates, reject
 */

static void *
ms_smtp_start(const struct sieve_script_env *senv, const struct smtp_address *mail_from)
{
	pool_t pool = pool_alloconly_create("mailsift sieve smtp", 512);
	struct ms_sieve_smtp *smtp = p_new(pool, struct ms_sieve_smtp, 1);

	smtp->pool = pool;
	smtp->ctx = senv->script_context;
	smtp->from = p_strdup(pool, mail_from == NULL ? "" : smtp_address_encode(mail_from));
	p_array_init(&smtp->rcpts, pool, 4);
	return smtp;
}

static void
ms_smtp_add_rcpt(const struct sieve_script_env *senv ATTR_UNUSED, void *handle,
                 const struct smtp_address *rcpt_to)
{
	struct ms_sieve_smtp *smtp = handle;
	const char *rcpt = p_strdup(smtp->pool, smtp_address_encode(rcpt_to));

	array_push_back(&smtp->rcpts, &rcpt);
}

static struct ostream *
ms_smtp_send(const struct sieve_script_env *senv ATTR_UNUSED, void *handle)
{
	struct ms_sieve_smtp *smtp = handle;

	smtp->data = buffer_create_dynamic(default_pool, 4096);
	smtp->output = o_stream_create_buffer(smtp->data);
	return smtp->output;
}

static void
ms_smtp_free(struct ms_sieve_smtp *smtp)
{
	pool_t pool = smtp->pool;

	o_stream_destroy(&smtp->output);
	if (smtp->data != NULL)
		buffer_free(&smtp->data);
	pool_unref(&pool);
}

static void
ms_smtp_abort(const struct sieve_script_env *senv ATTR_UNUSED, void *handle)
{
	ms_smtp_free(handle);
}

static int
ms_smtp_finish(const struct sieve_script_env *senv ATTR_UNUSED, void *handle, const char **error_r)
{
	struct ms_sieve_smtp *smtp = handle;
	char err[256] = "";
	int ret;

	array_append_zero(&smtp->rcpts);
	ret = ms_sendmail(smtp->ctx->set->sendmail, smtp->from, array_front(&smtp->rcpts),
	                  smtp->data == NULL ? NULL : smtp->data->data,
	                  smtp->data == NULL ? 0 : smtp->data->used, err, sizeof(err));
	if (ret > 0)
		smtp->ctx->out->n_sent++;
	else
		*error_r = t_strdup(err);
	ms_smtp_free(smtp);
	return ret;
}

static void *
ms_dup_begin(const struct sieve_script_env *senv)
{
	struct ms_sieve_run_ctx *ctx = senv->script_context;
	char err[256];
	struct ms_dupdb *db;

	if (ctx->dup_path == NULL)
		return NULL;
	db = ms_dupdb_open(ctx->dup_path, ctx->set->dup_max, err, sizeof(err));
	if (db == NULL)
		i_error("sieve: duplicates: %s", err);
	return db;
}

static void
ms_dup_commit(void **_trans)
{
	struct ms_dupdb *db = *_trans;
	char err[256];

	*_trans = NULL;
	if (db != NULL && ms_dupdb_commit(db, err, sizeof(err)) < 0)
		i_error("sieve: duplicates: %s", err);
}

static void
ms_dup_rollback(void **_trans)
{
	struct ms_dupdb *db = *_trans;

	*_trans = NULL;
	if (db != NULL)
		ms_dupdb_rollback(db);
}

static enum sieve_duplicate_check_result
ms_dup_check(void *trans, const struct sieve_script_env *senv ATTR_UNUSED, const void *id,
             size_t id_size)
{
	if (trans == NULL)
		return SIEVE_DUPLICATE_CHECK_RESULT_FAILURE;
	return ms_dupdb_check(trans, id, id_size, ioloop_time)
	               ? SIEVE_DUPLICATE_CHECK_RESULT_EXISTS
	               : SIEVE_DUPLICATE_CHECK_RESULT_NOT_FOUND;
}

static void
ms_dup_mark(void *trans, const struct sieve_script_env *senv ATTR_UNUSED, const void *id,
            size_t id_size, time_t time)
{
	if (trans != NULL)
		ms_dupdb_mark(trans, id, id_size, time);
}

static int
ms_reject_mail(const struct sieve_script_env *senv,
               const struct smtp_address *recipient ATTR_UNUSED, const char *reason)
{
	struct ms_sieve_run_ctx *ctx = senv->script_context;

	ctx->out->status = MS_SIEVE_REJECT;
	i_strocpy(ctx->out->reason, reason, sizeof(ctx->out->reason));
	return 0;
}

/*
 * Running the scripts
 */

static const struct message_address *
ms_sieve_postmaster(const struct ms_sieve_settings *set, const char *hostname)
{
	const char *addr = *set->postmaster != '\0' ? set->postmaster
	                                            : t_strconcat("postmaster@", hostname, NULL);

	return message_address_parse(pool_datastack_create(), (const unsigned char *)addr,
	                             strlen(addr), 1, 0);
}

static int
ms_sieve_parse_envelope(const struct ms_sieve_request *req, struct sieve_message_data *msgdata,
                        const char **error_r)
{
	struct smtp_address *addr;
	const char *error;
	pool_t pool = pool_datastack_create();

	if (*req->sender == '\0')
		msgdata->envelope.mail_from = smtp_address_create(pool, NULL, NULL);
	else if (smtp_address_parse_mailbox(pool, req->sender,
	                                    SMTP_ADDRESS_PARSE_FLAG_ALLOW_LOCALPART |
	                                            SMTP_ADDRESS_PARSE_FLAG_ALLOW_BAD_LOCALPART,
	                                    &addr, &error) < 0) {
		*error_r = t_strdup_printf("bad sender <%s>: %s", req->sender, error);
		return -1;
	} else {
		msgdata->envelope.mail_from = addr;
	}
	if (smtp_address_parse_mailbox(pool, req->rcpt,
	                               SMTP_ADDRESS_PARSE_FLAG_ALLOW_LOCALPART |
	                                       SMTP_ADDRESS_PARSE_FLAG_ALLOW_BAD_LOCALPART,
	                               &addr, &error) < 0) {
		*error_r = t_strdup_printf("bad recipient <%s>: %s", req->rcpt, error);
		return -1;
	}
	msgdata->envelope.rcpt_to = addr;
	return 0;
}

struct ms_sieve_script {
	const char *path;
	bool user; /* the user's own script: errors go to its .log */
	struct sieve_binary *sbin;
};

/* Opens (loads the compiled .svbin when it is newer, else compiles and saves
 * it: Pigeonhole's own cache) one script. NULL: missing or broken. */
static struct sieve_binary *
ms_sieve_open(struct sieve_instance *svinst, const char *path, struct sieve_error_handler *ehandler,
              enum sieve_compile_flags flags, bool *broken_r)
{
	struct sieve_binary *sbin;
	enum sieve_error error;

	*broken_r = FALSE;
	sbin = sieve_open(svinst, path, NULL, ehandler, flags, &error);
	if (sbin == NULL) {
		if (error != SIEVE_ERROR_NOT_FOUND) {
			i_error("sieve: script %s: %s", path,
			        error == SIEVE_ERROR_NOT_VALID ? "does not compile (see its .log)"
			                                       : "cannot be opened");
			*broken_r = TRUE;
		}
		return NULL;
	}
	if (!sieve_is_loaded(sbin))
		(void)sieve_save(sbin, FALSE, NULL);
	return sbin;
}

static bool
ms_sieve_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void
ms_sieve_cached_script_clear(struct ms_sieve_cached_script *cs)
{
	if (cs->sbin != NULL)
		sieve_close(&cs->sbin);
	i_free(cs->path);
}

/* The compiled script for slot cs, from the cache while its file is
 * unchanged. NULL: missing or broken (*broken_r). */
static struct sieve_binary *
ms_sieve_cached_open(struct ms_sieve_cached_script *cs, struct sieve_instance *svinst,
                     const char *path, struct sieve_error_handler *ehandler,
                     enum sieve_compile_flags flags, bool *broken_r)
{
	struct stat st;

	*broken_r = FALSE;
	if (stat(path, &st) < 0) {
		ms_sieve_cached_script_clear(cs);
		return NULL;
	}
	if (cs->sbin != NULL && strcmp(cs->path, path) == 0 && ms_sieve_same_file(&cs->st, &st))
		return cs->sbin;
	ms_sieve_cached_script_clear(cs);
	cs->sbin = ms_sieve_open(svinst, path, ehandler, flags, broken_r);
	cs->path = i_strdup(path);
	cs->st = st;
	return cs->sbin;
}

static int
ms_sieve_execute(struct ms_sieve_run_ctx *ctx, struct sieve_instance *svinst,
                 struct ms_sieve_script *scripts, unsigned int count,
                 const struct sieve_message_data *msgdata, const struct sieve_script_env *senv,
                 struct sieve_error_handler *master_eh, struct sieve_error_handler *user_eh)
{
	struct sieve_execute_env eenv;
	struct sieve_result *result;
	struct sieve_result_execution *rexec;
	struct sieve_error_handler *eh;
	pool_t pool;
	unsigned int i;
	int status = SIEVE_EXEC_OK;
	bool keep = TRUE;

	pool = pool_alloconly_create("mailsift sieve", 4096);
	sieve_execute_init(&eenv, svinst, pool, msgdata, senv, 0);
	result = sieve_result_create(svinst, pool, &eenv);
	/* Between scripts an explicit keep is only noted; the last step
	 * stores it once (Pigeonhole's multiscript does the same). */
	sieve_result_set_keep_action(result, NULL, NULL);
	sieve_result_set_failure_action(result, NULL, &ms_failure_keep);
	sieve_result_add_implicit_side_effect(result, NULL, TRUE, NULL, &ms_capture_seffect, ctx);
	rexec = sieve_result_execution_create(result, pool);

	for (i = 0; i < count && keep && status == SIEVE_EXEC_OK; i++) {
		struct sieve_interpreter *interp;

		eh = scripts[i].user && user_eh != NULL ? user_eh : master_eh;
		eenv.flags = scripts[i].user ? SIEVE_EXECUTE_FLAG_NOGLOBAL : 0;
		interp = sieve_interpreter_create(scripts[i].sbin, NULL, &eenv, eh);
		if (interp == NULL) {
			status = SIEVE_EXEC_BIN_CORRUPT;
			break;
		}
		status = sieve_interpreter_run(interp, result);
		sieve_interpreter_free(&interp);
		if (status != SIEVE_EXEC_OK) {
			i_error("sieve: script %s failed at run time (%s)", scripts[i].path,
			        sieve_execution_exitcode_to_str(status));
			break;
		}
		keep = FALSE;
		status = sieve_result_execute(rexec, SIEVE_EXEC_OK, FALSE, eh, &keep);
	}
	if (status == SIEVE_EXEC_BIN_CORRUPT)
		status = SIEVE_EXEC_FAILURE;
	sieve_result_set_keep_action(result, NULL, &act_store);
	status = sieve_result_execute(rexec, status, TRUE, master_eh, NULL);
	sieve_execute_finish(&eenv, status);

	sieve_result_execution_destroy(&rexec);
	sieve_result_unref(&result);
	sieve_execute_deinit(&eenv);
	pool_unref(&pool);
	return status;
}

static void
ms_sieve_run_scripts(struct ms_sieve_run_ctx *ctx, struct sieve_instance *svinst, struct mail *mail,
                     const char *hostname)
{
	const struct ms_sieve_settings *set = ctx->set;
	const struct ms_sieve_request *req = ctx->req;
	struct ms_sieve_outcome *out = ctx->out;
	struct ms_sieve_script scripts[MS_SIEVE_MAX_SCRIPTS];
	struct sieve_error_handler *master_eh, *user_eh = NULL;
	struct sieve_message_data msgdata;
	struct sieve_script_env senv;
	struct sieve_exec_status estatus;
	const char *paths[MS_SIEVE_MAX_SCRIPTS], *error, *log_path;
	unsigned int i, count = 0;
	bool broken = FALSE, script_broken;
	int status;

	master_eh = sieve_master_ehandler_create(svinst, 0);
	paths[0] = ms_sieve_expand_home(set->before, req->home);
	paths[1] = ctx->user_script;
	paths[2] = ms_sieve_expand_home(set->after, req->home);
	for (i = 0; i < MS_SIEVE_MAX_SCRIPTS; i++) {
		struct sieve_error_handler *eh = master_eh;

		if (paths[i] == NULL)
			continue;
		if (i == 1) {
			log_path = t_strconcat(paths[i], ".log", NULL);
			user_eh = sieve_logfile_ehandler_create(svinst, log_path,
			                                        MS_SIEVE_MAX_USER_ERRORS);
			eh = user_eh;
		}
		scripts[count].sbin = ms_sieve_cached_open(&ctx->scripts[i], svinst, paths[i], eh,
		                                           i == 1 ? SIEVE_COMPILE_FLAG_NOGLOBAL : 0,
		                                           &script_broken);
		if (scripts[count].sbin == NULL) {
			broken = broken || script_broken;
			continue;
		}
		scripts[count].path = paths[i];
		scripts[count].user = (i == 1);
		count++;
	}

	i_zero(&msgdata);
	msgdata.mail = mail;
	msgdata.auth_user = req->user;
	(void)mail_get_message_id(mail, &msgdata.id);

	i_zero(&senv);
	i_zero(&estatus);
	senv.default_mailbox = req->mailbox;
	senv.postmaster_address = ms_sieve_postmaster(set, hostname);
	senv.script_context = ctx;
	senv.smtp_start = ms_smtp_start;
	senv.smtp_add_rcpt = ms_smtp_add_rcpt;
	senv.smtp_send = ms_smtp_send;
	senv.smtp_abort = ms_smtp_abort;
	senv.smtp_finish = ms_smtp_finish;
	senv.duplicate_transaction_begin = ms_dup_begin;
	senv.duplicate_transaction_commit = ms_dup_commit;
	senv.duplicate_transaction_rollback = ms_dup_rollback;
	senv.duplicate_check = ms_dup_check;
	senv.duplicate_mark = ms_dup_mark;
	senv.reject_mail = ms_reject_mail;
	senv.exec_status = &estatus;

	if (ms_sieve_parse_envelope(req, &msgdata, &error) < 0) {
		i_error("sieve: %s", error);
		out->status = MS_SIEVE_TEMPFAIL;
		i_strocpy(out->reason, error, sizeof(out->reason));
	} else if (senv.postmaster_address == NULL) {
		out->status = MS_SIEVE_TEMPFAIL;
		i_strocpy(out->reason, "bad postmaster_address", sizeof(out->reason));
	} else {
		status = ms_sieve_execute(ctx, svinst, scripts, count, &msgdata, &senv, master_eh,
		                          user_eh);
		if (status == SIEVE_EXEC_TEMP_FAILURE || status == SIEVE_EXEC_KEEP_FAILED) {
			out->status = MS_SIEVE_TEMPFAIL;
			i_strocpy(out->reason, sieve_execution_exitcode_to_str(status),
			          sizeof(out->reason));
		} else if (status != SIEVE_EXEC_OK) {
			out->script_error = TRUE;
		}
	}
	/* A script that does not compile is left out; the others and the
	 * implicit keep still run. */
	if (broken)
		out->script_error = TRUE;
	if (user_eh != NULL)
		sieve_error_handler_unref(&user_eh);
	sieve_error_handler_unref(&master_eh);
}

static void
ms_sieve_cache_clear(struct ms_sieve_cache *c)
{
	unsigned int i;

	for (i = 0; i < MS_SIEVE_MAX_SCRIPTS; i++)
		ms_sieve_cached_script_clear(&c->scripts[i]);
	if (c->svinst != NULL)
		sieve_deinit(&c->svinst);
	i_free(c->key);
	i_free(c->personal);
	i_free(c->user_script);
	i_free(c->dup_path);
	i_free(c->hostname);
}

static const char *
ms_sieve_cache_key(const struct ms_sieve_settings *set, const struct ms_sieve_request *req)
{
	return t_strdup_printf("%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s", req->user,
	                       req->home == NULL ? "" : req->home, set->script, set->script_dir,
	                       set->before, set->after, set->sendmail, set->postmaster,
	                       set->hostname);
}

/* The cached entry for key, or the one to replace: an empty one, else the
 * least recently used. */
static struct ms_sieve_cache *
ms_sieve_cache_find(const char *key)
{
	struct ms_sieve_cache *c, *victim = &ms_sieve_cache[0];
	unsigned int i;

	for (i = 0; i < MS_SIEVE_CACHED_USERS; i++) {
		c = &ms_sieve_cache[i];
		if (c->svinst != NULL && strcmp(c->key, key) == 0)
			return c;
		if (victim->svinst != NULL &&
		    (c->svinst == NULL || c->last_used < victim->last_used))
			victim = c;
	}
	return victim;
}

/* The Sieve instance for this user and these settings: the cached one, or
 * a new one. NULL if Pigeonhole cannot start. */
static struct ms_sieve_cache *
ms_sieve_instance(const struct ms_sieve_settings *set, const struct ms_sieve_request *req)
{
	struct sieve_environment svenv;
	const char *key = ms_sieve_cache_key(set, req), *script_dir;
	struct ms_sieve_cache *c = ms_sieve_cache_find(key);

	c->last_used = ++ms_sieve_cache_clock;
	if (c->svinst != NULL && strcmp(c->key, key) == 0)
		return c;
	ms_sieve_cache_clear(c);
	c->key = i_strdup(key);
	c->user_script = i_strdup(ms_sieve_expand_home(set->script, req->home));
	script_dir = ms_sieve_expand_home(set->script_dir, req->home);
	if (script_dir != NULL && c->user_script != NULL)
		c->personal = i_strdup_printf("file:%s;active=%s", script_dir, c->user_script);
	if (req->home != NULL && *req->home != '\0')
		c->dup_path = i_strconcat(req->home, "/.mailsift.sieve-dupes", NULL);
	c->hostname = i_strdup(*set->hostname != '\0' ? set->hostname : my_hostdomain());

	i_zero(&svenv);
	svenv.hostname = c->hostname;
	svenv.username = req->user;
	svenv.home_dir = req->home;
	svenv.temp_dir = "/tmp";
	svenv.flags = SIEVE_FLAG_HOME_RELATIVE;
	svenv.location = SIEVE_ENV_LOCATION_MDA;
	svenv.delivery_phase = SIEVE_DELIVERY_PHASE_DURING;
	c->ctx.set = set;
	c->ctx.req = req;
	c->ctx.user_script = c->user_script;
	c->ctx.personal = c->personal;
	c->ctx.dup_path = c->dup_path;
	c->ctx.scripts = c->scripts;
	c->svinst = sieve_init(&svenv, &ms_sieve_callbacks, &c->ctx, FALSE);
	if (c->svinst == NULL) {
		ms_sieve_cache_clear(c);
		return NULL;
	}
	return c;
}

void
ms_sieve_run(const struct ms_sieve_settings *set, const struct ms_sieve_request *req,
             struct ms_sieve_outcome *out)
{
	struct ms_sieve_run_ctx *ctx;
	struct ms_sieve_cache *c;
	struct mail_raw *mailr;
	struct istream *input;

	i_zero(out);
	out->status = MS_SIEVE_DELIVER;
	/* a long-lived worker never runs its ioloop: vacation and duplicate
	 * expiry read ioloop_time */
	io_loop_time_refresh();
	T_BEGIN
	{
		c = ms_sieve_instance(set, req);
		if (c == NULL) {
			out->status = MS_SIEVE_TEMPFAIL;
			i_strocpy(out->reason, "sieve_init failed", sizeof(out->reason));
		} else {
			/* this request's data behind the instance's context */
			ctx = &c->ctx;
			ctx->set = set;
			ctx->req = req;
			ctx->out = out;
			input = i_stream_create_from_data(req->msg, req->msg_size);
			mailr = mail_raw_open_stream(ms_sieve_global.raw_user, input);
			i_stream_unref(&input);
			ms_sieve_run_scripts(ctx, c->svinst, mailr->mail, c->hostname);
			mail_raw_close(&mailr);
		}
	}
	T_END;
}
