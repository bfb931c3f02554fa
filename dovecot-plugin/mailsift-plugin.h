#ifndef MAILSIFT_PLUGIN_H
#define MAILSIFT_PLUGIN_H

#include "module-context.h"
#include "mail-user.h"
#include "mail-storage-private.h"

/* The user's plugin { } settings, read once when the user is created. */
struct mailsift_user {
	union mail_user_module_context module_ctx;

	const char *spool_dir;
	const char *learner_socket;
	/* NULL-terminated mailbox names that count as Junk / Trash
	   besides the \Junk / \Trash special-use flags. */
	const char *const *junk_names;
	const char *const *trash_names;
	uoff_t max_size;
	bool learn_append;
	/* Maildir files may be hard-linked into the spool: they hold the
	   message as the learner must see it (no compressing or encrypting
	   plugin rewrites them). */
	bool link_files;
};

#define MAILSIFT_USER_CONTEXT(obj) MODULE_CONTEXT(obj, mailsift_user_module)
extern MODULE_CONTEXT_DEFINE(mailsift_user_module, &mail_user_module_register);

extern const char *mailsift_plugin_version;
void mailsift_plugin_init(struct module *module);
void mailsift_plugin_deinit(void);

/* mailsift-mailbox.c */
void mailsift_mailbox_allocated(struct mailbox *box);

#endif
