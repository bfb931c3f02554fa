#include "ms-privs.h"
#include "ms-log.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
save_groups(struct ms_privs *saved)
{
	int n = getgroups(0, NULL);

	saved->egid = getegid();
	saved->groups = NULL;
	saved->ngroups = n;
	if (n < 0)
		return -1;
	if ((saved->groups = calloc((size_t)n + 1, sizeof(gid_t))) == NULL)
		return -1;
	saved->ngroups = getgroups(n, saved->groups);
	return saved->ngroups < 0 ? -1 : 0;
}

int
ms_privs_become(uid_t uid, gid_t gid, struct ms_privs *saved, char *err, size_t errlen)
{
	memset(saved, 0, sizeof(*saved));
	if (geteuid() != 0)
		return 0;
	if (uid == 0) {
		snprintf(err, errlen, "refusing to deliver as uid 0");
		return -1;
	}
	if (save_groups(saved) < 0) {
		snprintf(err, errlen, "getgroups: %s", strerror(errno));
		free(saved->groups);
		saved->groups = NULL;
		return -1;
	}
	saved->switched = true;
	if (setgroups(1, &gid) < 0 || setegid(gid) < 0 || seteuid(uid) < 0) {
		snprintf(err, errlen, "switching to uid %lu gid %lu: %s", (unsigned long)uid,
		         (unsigned long)gid, strerror(errno));
		ms_privs_restore(saved);
		return -1;
	}
	return 0;
}

void
ms_privs_restore(struct ms_privs *saved)
{
	if (!saved->switched)
		return;
	if (seteuid(0) < 0 || setegid(saved->egid) < 0 ||
	    setgroups((size_t)saved->ngroups, saved->groups) < 0) {
		ms_log_error("cannot switch back to root: %s", strerror(errno));
		abort();
	}
	free(saved->groups);
	saved->groups = NULL;
	saved->switched = false;
}
