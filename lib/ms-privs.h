#ifndef MS_PRIVS_H
#define MS_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Delivering as each user's uid/gid. A root process switches its effective
 * ids (and groups) around the write and switches back; any other process
 * (the usual single vmail uid) writes as itself. */

struct ms_privs {
	bool switched;
	gid_t egid;
	int ngroups;
	gid_t *groups;
};

/* Returns 0, or -1 with err set (uid 0 is refused). */
int ms_privs_become(uid_t uid, gid_t gid, struct ms_privs *saved, char *err, size_t errlen);
/* Back to root. A process that cannot get back aborts: it would deliver
 * the next message as the wrong user. */
void ms_privs_restore(struct ms_privs *saved);

#endif
