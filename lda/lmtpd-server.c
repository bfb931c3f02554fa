/* The listeners and the set of live sessions: accept within
 * max_connections, and on shutdown stop accepting and wait for the
 * transactions in progress before stopping the ioloop. */
#include "lib.h"
#include "array.h"
#include "ioloop.h"
#include "net.h"

#include "ms-config.h"
#include "ms-log.h"
#include "lmtpd.h"

#include <errno.h>
#include <unistd.h>

struct lmtpd_listener {
	int fd;
	struct io *io;
	struct lmtpd_server *server;
};

struct lmtpd_server {
	const struct lmtpd_env *env;
	ARRAY(struct lmtpd_listener) listeners;
	ARRAY(struct lmtpd_session *) sessions;
	struct timeout *to_shutdown;
	bool shutting_down;
};

/* Over the limit: say so in one line rather than let the client hang. */
static void
refuse_connection(int fd)
{
	static const char busy[] = "421 4.3.2 Too many connections, try again later\r\n";

	if (write(fd, busy, sizeof(busy) - 1) < 0) {
		/* the client is told by the close instead */
	}
	(void)close(fd);
}

static void
listener_accept(struct lmtpd_listener *listener)
{
	struct lmtpd_server *server = listener->server;
	unsigned int max = server->env->cfg->max_connections;
	int fd;

	if ((fd = net_accept(listener->fd, NULL, NULL)) < 0) {
		if (fd == -2)
			ms_log_error("accept: %s", strerror(errno));
		return;
	}
	net_set_nonblock(fd, TRUE);
	fd_close_on_exec(fd, TRUE);
	if (max > 0 && array_count(&server->sessions) >= max) {
		ms_log_warning("max_connections (%u) reached, refusing a client", max);
		refuse_connection(fd);
		return;
	}
	struct lmtpd_session *session = lmtpd_session_create(server->env, server, fd);
	array_push_back(&server->sessions, &session);
}

struct lmtpd_server *
lmtpd_server_create(const struct lmtpd_env *env, const int *listen_fds, unsigned int listen_count)
{
	struct lmtpd_server *server;
	struct lmtpd_listener *listener;
	unsigned int i;

	server = i_new(struct lmtpd_server, 1);
	server->env = env;
	i_array_init(&server->listeners, listen_count);
	i_array_init(&server->sessions, 16);
	for (i = 0; i < listen_count; i++) {
		listener = array_append_space(&server->listeners);
		listener->fd = listen_fds[i];
		listener->server = server;
		net_set_nonblock(listener->fd, TRUE);
	}
	/* io_add only once the array is final: it holds pointers into it */
	array_foreach_modifiable(&server->listeners, listener) listener->io =
	        io_add(listener->fd, IO_READ, listener_accept, listener);
	return server;
}

static void
close_listeners(struct lmtpd_server *server)
{
	struct lmtpd_listener *listener;

	array_foreach_modifiable(&server->listeners, listener)
	{
		io_remove(&listener->io);
		if (listener->fd != -1)
			(void)close(listener->fd);
		listener->fd = -1;
	}
}

/* The grace time is over: whoever is still talking is cut off. */
static void
shutdown_timeout(struct lmtpd_server *server)
{
	struct lmtpd_session *const *sessions;
	unsigned int i, count;

	timeout_remove(&server->to_shutdown);
	ms_log_warning("shutdown: closing %u sessions still in progress",
	               array_count(&server->sessions));
	/* terminating may free the session and shrink the array: copy first */
	sessions = p_memdup(pool_datastack_create(), array_front(&server->sessions),
	                    sizeof(*sessions) * array_count(&server->sessions));
	count = array_count(&server->sessions);
	for (i = 0; i < count; i++)
		lmtpd_session_terminate(sessions[i]);
	io_loop_stop(current_ioloop);
}

void
lmtpd_server_shutdown(struct lmtpd_server *server)
{
	struct lmtpd_session *session;
	unsigned int secs = server->env->cfg->idle_timeout_secs;

	if (server->shutting_down)
		return;
	server->shutting_down = TRUE;
	close_listeners(server);
	ms_log_info("shutting down: %u sessions to finish", array_count(&server->sessions));
	if (array_count(&server->sessions) == 0) {
		io_loop_stop(current_ioloop);
		return;
	}
	array_foreach_elem(&server->sessions, session) lmtpd_session_shutdown(session);
	server->to_shutdown =
	        timeout_add((secs > 0 ? secs : 300) * 1000U, shutdown_timeout, server);
}

void
lmtpd_server_session_freed(struct lmtpd_server *server, struct lmtpd_session *session)
{
	struct lmtpd_session *const *sessions;
	unsigned int i, count;

	sessions = array_get(&server->sessions, &count);
	for (i = 0; i < count; i++) {
		if (sessions[i] == session) {
			array_delete(&server->sessions, i, 1);
			break;
		}
	}
	if (server->shutting_down && array_count(&server->sessions) == 0)
		io_loop_stop(current_ioloop);
}

void
lmtpd_server_destroy(struct lmtpd_server **_server)
{
	struct lmtpd_server *server = *_server;

	*_server = NULL;
	close_listeners(server);
	timeout_remove(&server->to_shutdown);
	array_free(&server->listeners);
	array_free(&server->sessions);
	i_free(server);
}
