#include "ms-daemon.h"
#include "ms-util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int
parse_id(const char *str, unsigned long *id_r)
{
	char *end;

	if (*str < '0' || *str > '9')
		return -1;
	errno = 0;
	*id_r = strtoul(str, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

int
ms_daemon_lookup_user(const char *user, const char *group, struct ms_daemon_user *du_r, char *err,
                      size_t errlen)
{
	struct passwd *pw;
	struct group *gr;
	unsigned long id;

	du_r->is_root = geteuid() == 0;
	du_r->uid = geteuid();
	du_r->gid = getegid();
	if (!du_r->is_root)
		return 0;
	if ((pw = getpwnam(user)) != NULL)
		du_r->uid = pw->pw_uid;
	else if (parse_id(user, &id) == 0)
		du_r->uid = (uid_t)id;
	else
		return ms_error(err, errlen, "user %s: no such user", user);
	if ((gr = getgrnam(group)) != NULL)
		du_r->gid = gr->gr_gid;
	else if (parse_id(group, &id) == 0)
		du_r->gid = (gid_t)id;
	else
		return ms_error(err, errlen, "group %s: no such group", group);
	return 0;
}

/* A socket file nobody answers on is left over from a crash. */
static int
socket_in_use(const struct sockaddr_un *sun)
{
	int fd, ret;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	ret = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	(void)close(fd);
	return ret;
}

int
ms_daemon_listen_unix(const char *path, mode_t mode, const struct ms_daemon_user *owner, char *err,
                      size_t errlen)
{
	struct sockaddr_un sun;
	const char *what = NULL;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return ms_error(err, errlen, "%s: socket path too long", path);
	strcpy(sun.sun_path, path);
	if (socket_in_use(&sun))
		return ms_error(err, errlen, "%s: another process is listening there", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return ms_error(err, errlen, "unlink(%s): %s", path, strerror(errno));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return ms_error(err, errlen, "socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		what = "bind";
	else if (chmod(path, mode) < 0)
		what = "chmod";
	else if (owner->is_root && chown(path, owner->uid, owner->gid) < 0)
		what = "chown";
	else if (listen(fd, 64) < 0)
		what = "listen";
	if (what != NULL) {
		ms_error(err, errlen, "%s(%s): %s", what, path, strerror(errno));
		(void)close(fd);
		return -1;
	}
	return fd;
}

int
ms_daemon_detach(const char *pid_file, char *err, size_t errlen)
{
	char buf[32];
	int fd, len;

	if (daemon(0, 0) < 0)
		return ms_error(err, errlen, "daemon: %s", strerror(errno));
	if ((fd = open(pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return ms_error(err, errlen, "open(%s): %s", pid_file, strerror(errno));
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)len) != len) {
		(void)close(fd);
		return ms_error(err, errlen, "write(%s): %s", pid_file, strerror(errno));
	}
	if (close(fd) < 0)
		return ms_error(err, errlen, "close(%s): %s", pid_file, strerror(errno));
	return 0;
}

int
ms_daemon_drop_privileges(const struct ms_daemon_user *du, char *err, size_t errlen)
{
	if (!du->is_root)
		return 0;
	if (setgroups(1, &du->gid) < 0 || setgid(du->gid) < 0 || setuid(du->uid) < 0)
		return ms_error(err, errlen, "dropping privileges to %ld:%ld: %s", (long)du->uid,
		                (long)du->gid, strerror(errno));
	/* setuid(0) must fail now, or we still are root */
	if (du->uid != 0 && setuid(0) == 0)
		return ms_error(err, errlen, "could not drop root privileges");
	return 0;
}

/* Split "host:port" / "[v6]:port" in place. */
static int
split_host_port(char *addr, char **host_r, char **port_r)
{
	char *colon;

	if (*addr == '[') {
		char *end = strchr(addr, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		*end = '\0';
		*host_r = addr + 1;
		*port_r = end + 2;
		return 0;
	}
	if ((colon = strrchr(addr, ':')) == NULL)
		return -1;
	*colon = '\0';
	*host_r = addr;
	*port_r = colon + 1;
	return 0;
}

int
ms_daemon_listen_tcp(const char *addr, char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	char buf[256], *host, *port;
	const char *what = NULL;
	int fd, one = 1, ret;

	if (strlen(addr) >= sizeof(buf))
		return ms_error(err, errlen, "%s: address too long", addr);
	strcpy(buf, addr);
	if (split_host_port(buf, &host, &port) < 0 || *port == '\0')
		return ms_error(err, errlen, "%s: expected host:port, e.g. 127.0.0.1:24", addr);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	if ((ret = getaddrinfo(host, port, &hints, &ai)) != 0)
		return ms_error(err, errlen, "%s: %s", addr, gai_strerror(ret));
	if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		what = "socket";
	else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		what = "setsockopt";
	else if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		what = "bind";
	else if (listen(fd, 64) < 0)
		what = "listen";
	freeaddrinfo(ai);
	if (what != NULL) {
		ms_error(err, errlen, "%s(%s): %s", what, addr, strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		return -1;
	}
	return fd;
}
