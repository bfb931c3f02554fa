#include "ms-sieve-client.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS_SIEVE_MAX_REQUEST (256u * 1024 * 1024)

struct ms_sieve_client {
	char *worker_path;
	unsigned int timeout_secs;
	pid_t pid;
	int fd;
	uid_t uid;
	gid_t gid;
	time_t deadline; /* of the request in progress; 0: none */
};

/* Sends iov[] whole with as few sendmsg() calls as the socket allows: one
 * per request normally, so the worker wakes up once. */
static int
send_iov(int fd, struct iovec *iov, int iovcnt)
{
	struct msghdr msg;
	ssize_t ret;

	while (iovcnt > 0) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)iovcnt;
		ret = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -1;
		while (iovcnt > 0 && (size_t)ret >= iov->iov_len) {
			ret -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + ret;
			iov->iov_len -= (size_t)ret;
		}
	}
	return 0;
}

/* Waits until fd is readable; deadline 0 means wait forever. Returns 0, or
 * -1 on error or timeout (errno ETIMEDOUT). */
static int
wait_readable(int fd, time_t deadline)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	int ret;

	if (deadline == 0)
		return 0; /* the read itself blocks */
	for (;;) {
		time_t now = time(NULL);

		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		ret = poll(&pfd, 1, (int)(deadline - now) * 1000);
		if (ret > 0)
			return 0;
		if (ret == 0)
			errno = ETIMEDOUT;
		else if (errno == EINTR)
			continue;
		return -1;
	}
}

/* Reads exactly size bytes; deadline 0 means wait forever. Returns 1, 0 on
 * EOF at the start, -1 on error, EOF midway or timeout (errno ETIMEDOUT). */
static int
read_all(int fd, void *data, size_t size, time_t deadline)
{
	unsigned char *p = data;
	size_t done = 0;

	while (done < size) {
		ssize_t n;

		if (wait_readable(fd, deadline) < 0)
			return -1;
		n = read(fd, p + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EPIPE;
			return done == 0 ? 0 : -1;
		}
		done += (size_t)n;
	}
	return 1;
}

/* A request is a header (magic, dup_max, the length of each field or
 * UINT32_MAX for NULL) and the fields, each followed by a NUL, in one
 * message: the worker reads it with two read()s. */
int
ms_sieve_proto_write_request(int fd, const struct ms_sieve_settings *set,
                             const struct ms_sieve_request *req)
{
	const char *fields[MS_SIEVE_PROTO_FIELDS] = {
	        set->script,     set->script_dir, set->before,  set->after, set->sendmail,
	        set->postmaster, set->hostname,   req->user,    req->home,  req->sender,
	        req->rcpt,       req->orig_rcpt,  req->mailbox, NULL,
	};
	uint32_t head[2 + MS_SIEVE_PROTO_FIELDS];
	struct iovec iov[2 + 2 * MS_SIEVE_PROTO_FIELDS];
	unsigned int i;
	int n = 0;

	if (req->msg_size > MS_SIEVE_MAX_REQUEST)
		return -1;
	head[0] = MS_SIEVE_PROTO_REQUEST;
	head[1] = set->dup_max;
	iov[n++] = (struct iovec){head, sizeof(head)};
	for (i = 0; i < MS_SIEVE_PROTO_FIELDS; i++) {
		const void *data = i + 1 < MS_SIEVE_PROTO_FIELDS ? (const void *)fields[i]
		                                                 : (const void *)req->msg;
		size_t len = i + 1 < MS_SIEVE_PROTO_FIELDS
		                     ? (fields[i] == NULL ? 0 : strlen(fields[i]))
		                     : req->msg_size;

		if (data == NULL) {
			head[2 + i] = UINT32_MAX;
			continue;
		}
		head[2 + i] = (uint32_t)len;
		/* the NUL after a string field is its own; the message gets one */
		iov[n++] =
		        (struct iovec){(void *)data, i + 1 < MS_SIEVE_PROTO_FIELDS ? len + 1 : len};
		if (i + 1 == MS_SIEVE_PROTO_FIELDS)
			iov[n++] = (struct iovec){(void *)"", 1};
	}
	return send_iov(fd, iov, n);
}

int
ms_sieve_proto_read_request(int fd, struct ms_sieve_settings *set, struct ms_sieve_request *req,
                            char **buf_r)
{
	uint32_t head[2 + MS_SIEVE_PROTO_FIELDS];
	const char *fields[MS_SIEVE_PROTO_FIELDS];
	size_t total = 0;
	unsigned int i;
	char *buf, *p;
	int ret;

	*buf_r = NULL;
	if ((ret = read_all(fd, head, sizeof(head), 0)) <= 0)
		return ret;
	if (head[0] != MS_SIEVE_PROTO_REQUEST)
		return -1;
	for (i = 0; i < MS_SIEVE_PROTO_FIELDS; i++) {
		if (head[2 + i] != UINT32_MAX)
			total += (size_t)head[2 + i] + 1;
	}
	if (total > MS_SIEVE_MAX_REQUEST + 64 * 1024 || (buf = malloc(total + 1)) == NULL)
		return -1;
	if (read_all(fd, buf, total, 0) <= 0) {
		free(buf);
		return -1;
	}
	for (i = 0, p = buf; i < MS_SIEVE_PROTO_FIELDS; i++) {
		fields[i] = NULL;
		if (head[2 + i] == UINT32_MAX)
			continue;
		if (p[head[2 + i]] != '\0') {
			free(buf);
			return -1;
		}
		fields[i] = p;
		p += head[2 + i] + 1;
	}
	memset(set, 0, sizeof(*set));
	memset(req, 0, sizeof(*req));
	set->script = fields[0];
	set->script_dir = fields[1];
	set->before = fields[2];
	set->after = fields[3];
	set->sendmail = fields[4];
	set->postmaster = fields[5];
	set->hostname = fields[6];
	set->dup_max = head[1];
	req->user = fields[7];
	req->home = fields[8];
	req->sender = fields[9];
	req->rcpt = fields[10];
	req->orig_rcpt = fields[11];
	req->mailbox = fields[12];
	req->msg = (const unsigned char *)fields[13];
	req->msg_size = head[2 + MS_SIEVE_PROTO_FIELDS - 1];
	if (set->script == NULL || set->script_dir == NULL || set->before == NULL ||
	    set->after == NULL || set->sendmail == NULL || set->postmaster == NULL ||
	    set->hostname == NULL || req->user == NULL || req->sender == NULL ||
	    req->rcpt == NULL || req->msg == NULL) {
		free(buf);
		return -1;
	}
	*buf_r = buf;
	return 1;
}

#define MS_SIEVE_REPLY_MIN offsetof(struct ms_sieve_outcome, stores)

/* A reply is magic, size and the first size bytes of the outcome: the
 * stores it uses, not all MS_SIEVE_MAX_STORES. */
int
ms_sieve_proto_write_reply(int fd, const struct ms_sieve_outcome *out)
{
	unsigned int n = out->n_stores > MS_SIEVE_MAX_STORES ? MS_SIEVE_MAX_STORES : out->n_stores;
	uint32_t head[2] = {MS_SIEVE_PROTO_REPLY,
	                    (uint32_t)(MS_SIEVE_REPLY_MIN + n * sizeof(out->stores[0]))};
	struct iovec iov[2] = {{head, sizeof(head)}, {(void *)out, head[1]}};

	return send_iov(fd, iov, 2);
}

/* Reads one reply into out. Returns 1, or -1 (errno EPROTO: not a reply). */
static int
read_reply(int fd, struct ms_sieve_outcome *out, time_t deadline)
{
	uint32_t head[2];
	size_t done = 0, want = sizeof(head) + sizeof(*out);

	while (done < want) {
		struct iovec iov[2];
		int n = 0;
		ssize_t ret;

		if (done < sizeof(head))
			iov[n++] = (struct iovec){(char *)head + done, sizeof(head) - done};
		iov[n++] = done < sizeof(head)
		                   ? (struct iovec){out, want - sizeof(head)}
		                   : (struct iovec){(char *)out + done - sizeof(head), want - done};
		if (wait_readable(fd, deadline) < 0)
			return -1;
		ret = readv(fd, iov, n);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			if (ret == 0)
				errno = EPIPE;
			return -1;
		}
		done += (size_t)ret;
		if (done < sizeof(head) || want != sizeof(head) + sizeof(*out))
			continue;
		if (head[0] != MS_SIEVE_PROTO_REPLY || head[1] < MS_SIEVE_REPLY_MIN ||
		    head[1] > sizeof(*out) || done > sizeof(head) + head[1]) {
			errno = EPROTO;
			return -1;
		}
		want = sizeof(head) + head[1];
	}
	if (out->n_stores > (head[1] - MS_SIEVE_REPLY_MIN) / sizeof(out->stores[0])) {
		errno = EPROTO;
		return -1;
	}
	return 1;
}

static bool
script_exists(const char *path, const char *home)
{
	char buf[4096];
	struct stat st;

	if (path == NULL || *path == '\0')
		return false;
	if (path[0] == '~' && path[1] == '/') {
		if (home == NULL || *home == '\0' ||
		    (size_t)snprintf(buf, sizeof(buf), "%s%s", home, path + 1) >= sizeof(buf))
			return false;
		path = buf;
	}
	return stat(path, &st) == 0;
}

bool
ms_sieve_has_scripts(const struct ms_sieve_settings *set, const char *home)
{
	return script_exists(set->before, home) || script_exists(set->script, home) ||
	       script_exists(set->after, home);
}

struct ms_sieve_client *
ms_sieve_client_create(const char *worker_path, unsigned int timeout_secs)
{
	struct ms_sieve_client *client = calloc(1, sizeof(*client));

	if (client == NULL || (client->worker_path = strdup(worker_path)) == NULL) {
		free(client);
		return NULL;
	}
	client->timeout_secs = timeout_secs;
	client->fd = -1;
	return client;
}

/* Stops the worker; returns its wait status (or -1). */
static int
stop_worker(struct ms_sieve_client *client, int sig)
{
	int status = -1;

	if (client->fd >= 0)
		close(client->fd);
	client->fd = -1;
	if (client->pid > 0) {
		if (sig != 0)
			(void)kill(client->pid, sig);
		while (waitpid(client->pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	client->pid = 0;
	return status;
}

void
ms_sieve_client_destroy(struct ms_sieve_client **clientp)
{
	struct ms_sieve_client *client = *clientp;

	if (client == NULL)
		return;
	*clientp = NULL;
	(void)stop_worker(client, 0); /* closing its socket ends it */
	free(client->worker_path);
	free(client);
}

static void
exec_worker(const char *path, int fd, uid_t uid, gid_t gid)
{
	if (getuid() == 0 && uid != 0) {
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(71);
	}
	if (dup2(fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
		_exit(71);
	execl(path, path, (char *)NULL);
	_exit(127);
}

static int
start_worker(struct ms_sieve_client *client, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		/* back to root's real ids first: the caller may be between
		 * seteuid() calls */
		if (getuid() == 0 && (setegid(0) < 0 || seteuid(0) < 0))
			_exit(71);
		close(sv[0]);
		exec_worker(client->worker_path, sv[1], uid, gid);
	}
	close(sv[1]);
	client->pid = pid;
	client->fd = sv[0];
	client->uid = uid;
	client->gid = gid;
	return 0;
}

static void
worker_failed(struct ms_sieve_client *client, int saved_errno, char *err, size_t errlen)
{
	int status = stop_worker(client, saved_errno == ETIMEDOUT ? SIGKILL : 0);

	if (saved_errno == ETIMEDOUT)
		snprintf(err, errlen, "sieve worker timed out after %u s", client->timeout_secs);
	else if (status != -1 && WIFSIGNALED(status))
		snprintf(err, errlen, "sieve worker died (signal %d)", WTERMSIG(status));
	else if (status != -1 && WIFEXITED(status))
		snprintf(err, errlen, "sieve worker exited (%d)", WEXITSTATUS(status));
	else
		snprintf(err, errlen, "sieve worker: %s", strerror(saved_errno));
}

int
ms_sieve_client_send(struct ms_sieve_client *client, const struct ms_sieve_settings *set,
                     const struct ms_sieve_request *req, uid_t uid, gid_t gid, char *err,
                     size_t errlen)
{
	if (client->pid > 0 && getuid() == 0 && (client->uid != uid || client->gid != gid))
		(void)stop_worker(client, 0);
	if (client->pid <= 0 && start_worker(client, uid, gid, err, errlen) < 0)
		return -1;
	client->deadline = client->timeout_secs == 0 ? 0 : time(NULL) + client->timeout_secs;
	if (ms_sieve_proto_write_request(client->fd, set, req) < 0) {
		worker_failed(client, errno, err, errlen);
		return -1;
	}
	return 0;
}

int
ms_sieve_client_receive(struct ms_sieve_client *client, struct ms_sieve_outcome *out, char *err,
                        size_t errlen)
{
	if (client->fd < 0) {
		snprintf(err, errlen, "sieve worker: no request in progress");
		return -1;
	}
	if (read_reply(client->fd, out, client->deadline) < 0) {
		worker_failed(client, errno, err, errlen);
		return -1;
	}
	out->reason[sizeof(out->reason) - 1] = '\0';
	return 0;
}

int
ms_sieve_client_run(struct ms_sieve_client *client, const struct ms_sieve_settings *set,
                    const struct ms_sieve_request *req, uid_t uid, gid_t gid,
                    struct ms_sieve_outcome *out, char *err, size_t errlen)
{
	if (ms_sieve_client_send(client, set, req, uid, gid, err, errlen) < 0)
		return -1;
	return ms_sieve_client_receive(client, out, err, errlen);
}
