#ifndef MS_USERDB_H
#define MS_USERDB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The passwd-file userdb that Dovecot and OpenSMTPD read too:
 *   user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:extra fields
 * Empty uid, gid or home take the configured user, group and
 * mail_location. The file is re-read when it changes. */

#define MS_USER_NAME_MAX 256
#define MS_USER_PATH_MAX 1024

struct ms_user {
	char name[MS_USER_NAME_MAX]; /* local@domain as the file spells it */
	char local[MS_USER_NAME_MAX];
	char domain[MS_USER_NAME_MAX];
	uid_t uid;
	gid_t gid;
	char home[MS_USER_PATH_MAX]; /* "" if none */
	char mail[MS_USER_PATH_MAX]; /* userdb_mail= extra field, "" if none */
};

enum ms_userdb_result {
	MS_USERDB_FOUND,
	MS_USERDB_NOUSER,
	MS_USERDB_TEMPFAIL, /* file unreadable, or the user's line is broken */
};

/* One parsed line. Fields point into the (modified) line. */
struct ms_userdb_line {
	const char *name;
	const char *uid;  /* "" if empty */
	const char *gid;  /* "" if empty */
	const char *home; /* "" if empty */
	const char *mail; /* userdb_mail= or "" */
};

/* Split one line of the file in place (no trailing newline). Returns 1 for
 * an entry, 0 for a comment or blank line, -1 for a line with no usable
 * user name (problem set). */
int ms_userdb_parse_line(char *line, struct ms_userdb_line *line_r, const char **problem_r);

struct ms_userdb;

/* spec is the userdb config value, "passwd-file:/path". default_uid and
 * default_gid stand in for empty fields. Fails only on a bad spec: a
 * missing file is a lookup-time TEMPFAIL, so the daemon starts anyway. */
struct ms_userdb *ms_userdb_create(const char *spec, uid_t default_uid, gid_t default_gid,
                                   char *err, size_t errlen);
void ms_userdb_destroy(struct ms_userdb **db);

/* Look up address ("user+detail@domain" is "user@domain"; domain and
 * local part compare case-insensitively). err explains NOUSER and
 * TEMPFAIL. */
enum ms_userdb_result ms_userdb_lookup(struct ms_userdb *db, const char *address,
                                       struct ms_user *user_r, char *err, size_t errlen);

/* Resolve a user or group name or number, as the config's user/group and
 * the file's uid/gid fields allow. Return 0 or -1. */
int ms_userdb_parse_uid(const char *str, uid_t *uid_r);
int ms_userdb_parse_gid(const char *str, gid_t *gid_r);

#endif
