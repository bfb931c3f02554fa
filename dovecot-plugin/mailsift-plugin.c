/* Dovecot mail plugin: the user's moves into and out of Junk become training
 * events in mailsift's spool (DESIGN.md, "Learning"). This file reads the
 * settings and registers the hooks; mailsift-mailbox.c does the work. */
#include "lib.h"
#include "settings-parser.h"
#include "mailsift-plugin.h"

#define MAILSIFT_DEFAULT_SPOOL_DIR      "/var/spool/mailsift"
#define MAILSIFT_DEFAULT_LEARNER_SOCKET "/var/run/mailsift/learner.sock"
#define MAILSIFT_DEFAULT_MAX_SIZE       (1024 * 1024)

const char *mailsift_plugin_version = DOVECOT_ABI_VERSION;

struct mailsift_user_module mailsift_user_module = MODULE_CONTEXT_INIT(&mail_user_module_register);

static const char *
setting_or(struct mail_user *user, const char *name, const char *def)
{
	const char *value = mail_user_plugin_getenv(user, name);

	return value == NULL || *value == '\0' ? def : value;
}

/* Comma separated, so names with spaces ("Junk E-mail") work. */
static const char *const *
setting_names(struct mail_user *user, const char *name)
{
	char **names = p_strsplit(user->pool, setting_or(user, name, ""), ",");
	unsigned int i, n = 0;

	for (i = 0; names[i] != NULL; i++) {
		names[n] = p_strdup(user->pool, t_str_trim(names[i], " \t"));
		if (names[n][0] != '\0')
			n++;
	}
	names[n] = NULL;
	return (const char *const *)names;
}

static int
setting_bool(struct mail_user *user, const char *name, bool *value_r, const char **error_r)
{
	const char *value = setting_or(user, name, "no");

	if (strcasecmp(value, "yes") == 0)
		*value_r = TRUE;
	else if (strcasecmp(value, "no") == 0)
		*value_r = FALSE;
	else {
		*error_r = t_strdup_printf("%s: expected yes or no, not '%s'", name, value);
		return -1;
	}
	return 0;
}

/* A plugin that stores mail files compressed or encrypted: the file is not
 * the message, so it must be read through Dovecot, not linked. */
static bool
files_are_messages(struct mail_user *user)
{
	static const char *const transforming[] = {"zlib", "mail_compress", "mail_crypt", NULL};
	const char *const *plugins = t_strsplit_spaces(user->set->mail_plugins, " ,");
	unsigned int i;

	for (; *plugins != NULL; plugins++) {
		for (i = 0; transforming[i] != NULL; i++) {
			if (strcmp(*plugins, transforming[i]) == 0)
				return FALSE;
		}
	}
	return TRUE;
}

static int
mailsift_user_read_settings(struct mail_user *user, struct mailsift_user *muser,
                            const char **error_r)
{
	const char *value, *error;

	muser->spool_dir = setting_or(user, "mailsift_spool_dir", MAILSIFT_DEFAULT_SPOOL_DIR);
	muser->learner_socket =
	        setting_or(user, "mailsift_learner_socket", MAILSIFT_DEFAULT_LEARNER_SOCKET);
	muser->junk_names = setting_names(user, "mailsift_junk_mailbox");
	muser->trash_names = setting_names(user, "mailsift_trash_mailbox");
	muser->link_files = files_are_messages(user);

	muser->max_size = MAILSIFT_DEFAULT_MAX_SIZE;
	value = mail_user_plugin_getenv(user, "mailsift_max_size");
	if (value != NULL && *value != '\0' &&
	    settings_get_size(value, &muser->max_size, &error) < 0) {
		*error_r = t_strdup_printf("mailsift_max_size: %s", error);
		return -1;
	}
	return setting_bool(user, "mailsift_learn_append", &muser->learn_append, error_r);
}

static void
mailsift_mail_user_created(struct mail_user *user)
{
	struct mailsift_user *muser;
	const char *error;

	muser = p_new(user->pool, struct mailsift_user, 1);
	/* A bad value fails the login with a message naming the setting,
	   rather than silently learning nothing. */
	if (mailsift_user_read_settings(user, muser, &error) < 0) {
		user->error = p_strdup_printf(user->pool, "mailsift plugin: %s", error);
		return;
	}
	MODULE_CONTEXT_SET(user, mailsift_user_module, muser);
}

static struct mail_storage_hooks mailsift_mail_storage_hooks = {
        .mail_user_created = mailsift_mail_user_created,
        .mailbox_allocated = mailsift_mailbox_allocated,
};

void
mailsift_plugin_init(struct module *module)
{
	mail_storage_hooks_add(module, &mailsift_mail_storage_hooks);
}

void
mailsift_plugin_deinit(void)
{
	mail_storage_hooks_remove(&mailsift_mail_storage_hooks);
}
