#ifndef MS_DAEMON_H
#define MS_DAEMON_H

/* What every mailsift daemon does around its work: bind its socket as root,
 * detach, write pid_file, run as the unprivileged user. */

#include <stddef.h>
#include <sys/types.h>

struct ms_daemon_user {
	uid_t uid;
	gid_t gid;
	int is_root; /* only root can chown and drop privileges */
};

/* Look up user and group (names or numbers). Not root: uid/gid are ours. */
int ms_daemon_lookup_user(const char *user, const char *group, struct ms_daemon_user *du_r,
                          char *err, size_t errlen);

/* Listen on a unix stream socket: refuses if something answers there,
 * replaces a stale socket file, sets mode and (as root) owner. Returns the
 * non-blocking fd or -1. */
int ms_daemon_listen_unix(const char *path, mode_t mode, const struct ms_daemon_user *owner,
                          char *err, size_t errlen);

/* Listen on TCP "127.0.0.1:24" or "[::1]:24" (numeric only: no DNS at
 * startup). Returns the non-blocking fd or -1. */
int ms_daemon_listen_tcp(const char *addr, char *err, size_t errlen);

/* daemon(3) and write pid_file. Call while still root. */
int ms_daemon_detach(const char *pid_file, char *err, size_t errlen);

/* As root: setgroups, setgid, setuid to du. Otherwise a no-op. */
int ms_daemon_drop_privileges(const struct ms_daemon_user *du, char *err, size_t errlen);

#endif
