#ifndef MS_PATH_H
#define MS_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Every name that comes from the network and ends up in a path goes
 * through here first. */

/* Is addr (len bytes, may hold NUL) "local@domain" with both parts
 * non-empty, no '/', no "..", no NUL, no control characters or DEL, no
 * leading '.' in either part? Anything else is an unknown user. */
bool ms_path_safe_address(const char *addr, size_t len);

/* Is name a mailbox we may turn into a Maildir++ folder ".name"? Printable
 * ASCII, no '/', no "..", no leading or trailing '.', at most 200 bytes. */
bool ms_path_safe_folder(const char *name);

struct ms_path_vars {
	const char *user;   /* %u: local@domain */
	const char *local;  /* %n */
	const char *domain; /* %d */
	const char *home;   /* %h and ~/; "" if the user has none */
};

/* Expand a mail_location ("maildir:/var/vmail/%d/%n", "~/Maildir") into
 * buf: strips "maildir:" and any ":KEY=value" options, expands %u %n %d %h
 * %% (and %{user} %{username} %{domain} %{home}) and a leading "~/".
 * The result must be an absolute path without "." or ".." components and
 * fit in bufsize. Returns 0, or -1 with the reason in err. */
int ms_path_expand(const char *location, const struct ms_path_vars *vars, char *buf, size_t bufsize,
                   char *err, size_t errlen);

#endif
