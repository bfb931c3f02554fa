/* The learner socket: a line protocol for `mailsift` and the producers'
 * pokes (README.md, "The learner socket"). One request at a time per
 * connection; replies are one line. */
#include "learnd.h"

#include "ms-config.h"
#include "ms-control.h"
#include "ms-filter.h"
#include "ms-log.h"
#include "ms-spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_MAX_LEN 512

struct learnd_conn {
	int fd;
	long long last_active;
	char line[LINE_MAX_LEN];
	size_t line_len;
	/* a LEARN or CLASSIFY whose message is being read */
	bool learn;
	enum ms_class cls;
	char user[MS_SPOOL_USER_MAX + 1];
	unsigned char *body;
	size_t body_size, body_len;
};

static void
conn_free(struct learnd_conn *c)
{
	(void)close(c->fd);
	free(c->body);
	free(c);
}

int
learnd_control_fd(const struct learnd *l, unsigned int slot)
{
	return l->conns[slot]->fd;
}

void
learnd_control_accept(struct learnd *l)
{
	struct learnd_conn *c;
	int fd;

	while ((fd = accept(l->listen_fd, NULL, NULL)) >= 0) {
		if (l->nconns == LEARND_MAX_CONNS || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
		    (c = calloc(1, sizeof(*c))) == NULL) {
			ms_log_warning("control: too many connections");
			(void)close(fd);
			continue;
		}
		c->fd = fd;
		c->last_active = learnd_now_ms();
		l->conns[l->nconns++] = c;
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		ms_log_error("control: accept: %s", strerror(errno));
}

/* A reply that does not fit the socket buffer means a client that does
 * not read: it loses its connection rather than blocking the learner. */
static int __attribute__((format(printf, 2, 3)))
conn_reply(struct learnd_conn *c, const char *fmt, ...)
{
	char buf[1024];
	va_list args;
	int len;

	va_start(args, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	if (len >= (int)sizeof(buf))
		len = sizeof(buf) - 1;
	return send(c->fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) == len ? 0 : -1;
}

static const char *
learn_result_word(enum ms_learn_result result)
{
	return result == MS_LEARN_DONE ? "done" : result == MS_LEARN_ALREADY ? "already" : "moved";
}

static const char *
opt_user(const char *user)
{
	return user[0] == '\0' ? NULL : user;
}

static int
run_learn(struct learnd *l, struct learnd_conn *c)
{
	const char *cls_name = ms_spool_class_name(c->cls);
	enum ms_learn_result result;
	char err[512];

	if (ms_filter_learn(l->filter, opt_user(c->user), c->cls, c->body, c->body_size, &result,
	                    err, sizeof(err)) < 0) {
		ms_log_error("learn: user=%s class=%s source=socket: %s", c->user, cls_name, err);
		return conn_reply(c, "ERR %s\n", err);
	}
	ms_log_info("learn: user=%s class=%s size=%zu result=%s source=socket", c->user, cls_name,
	            c->body_size, learn_result_word(result));
	return conn_reply(c, "OK %s\n", learn_result_word(result));
}

static int
run_classify(struct learnd *l, struct learnd_conn *c)
{
	struct ms_verdict v;

	ms_filter_classify(l->filter, opt_user(c->user), c->body, c->body_size, &v);
	if (v.status != MS_VERDICT_OK)
		return conn_reply(c, "UNKNOWN %s\n", v.reason);
	return conn_reply(c, "OK %.4f %s %u\n", v.score, v.spam ? "spam" : "ham", v.ntokens);
}

static int
run_stats(struct learnd *l, struct learnd_conn *c, const char *user)
{
	struct ms_filter_stats st;
	char err[512];

	if (ms_filter_stats(l->filter, opt_user(user), &st, err, sizeof(err)) < 0)
		return conn_reply(c, "ERR %s\n", err);
	return conn_reply(c,
	                  "OK learned_spam=%llu learned_ham=%llu tokens=%llu table_slots=%llu "
	                  "memory_bytes=%llu\n",
	                  st.learned_spam, st.learned_ham, st.tokens, st.table_slots,
	                  st.memory_bytes);
}

/* The message announced by LEARN or CLASSIFY is complete. */
static int
run_body_command(struct learnd *l, struct learnd_conn *c)
{
	int ret = c->learn ? run_learn(l, c) : run_classify(l, c);

	free(c->body);
	c->body = NULL;
	c->body_size = c->body_len = 0;
	return ret;
}

static int
run_line(struct learnd *l, struct learnd_conn *c, const char *line)
{
	struct ms_control_req req;
	char err[256];

	if (ms_control_parse(line, l->cfg->max_message_size, &req, err, sizeof(err)) < 0) {
		(void)conn_reply(c, "ERR %s\n", err);
		/* the message of a bad LEARN/CLASSIFY follows: no way to resync */
		return req.cmd == MS_CONTROL_LEARN || req.cmd == MS_CONTROL_CLASSIFY ? -1 : 0;
	}
	switch (req.cmd) {
	case MS_CONTROL_POKE:
		l->spool_wanted = true;
		l->pin_wanted = true;
		/* a producer's poke closes at once: the reply is for humans */
		(void)conn_reply(c, "OK\n");
		return 0;
	case MS_CONTROL_STATS:
		return run_stats(l, c, req.user);
	case MS_CONTROL_LEARN:
	case MS_CONTROL_CLASSIFY:
		if ((c->body = malloc(req.size)) == NULL)
			return -1;
		c->learn = req.cmd == MS_CONTROL_LEARN;
		c->cls = req.cls;
		c->body_size = req.size;
		c->body_len = 0;
		memcpy(c->user, req.user, sizeof(c->user));
		return 0;
	case MS_CONTROL_QUIT:
	case MS_CONTROL_UNKNOWN:
		break;
	}
	return -1;
}

/* Consume input: lines, or the message a LEARN/CLASSIFY announced. */
static int
conn_input(struct learnd *l, struct learnd_conn *c, const unsigned char *data, size_t len)
{
	size_t take;
	char *nl;

	while (len > 0) {
		if (c->body != NULL) {
			take = c->body_size - c->body_len < len ? c->body_size - c->body_len : len;
			memcpy(c->body + c->body_len, data, take);
			c->body_len += take;
			data += take;
			len -= take;
			if (c->body_len == c->body_size && run_body_command(l, c) < 0)
				return -1;
			continue;
		}
		take = sizeof(c->line) - c->line_len < len ? sizeof(c->line) - c->line_len : len;
		memcpy(c->line + c->line_len, data, take);
		nl = memchr(c->line + c->line_len, '\n', take);
		if (nl == NULL) {
			c->line_len += take;
			if (c->line_len < sizeof(c->line))
				return 0;
			(void)conn_reply(c, "ERR line too long\n");
			return -1;
		}
		take = (size_t)(nl - (c->line + c->line_len)) + 1;
		data += take;
		len -= take;
		*nl = '\0';
		if (nl > c->line && nl[-1] == '\r')
			nl[-1] = '\0';
		c->line_len = 0;
		if (run_line(l, c, c->line) < 0)
			return -1;
	}
	return 0;
}

static void
conn_close(struct learnd *l, unsigned int slot)
{
	conn_free(l->conns[slot]);
	l->conns[slot] = l->conns[--l->nconns];
}

void
learnd_control_io(struct learnd *l, unsigned int slot, short revents)
{
	struct learnd_conn *c = l->conns[slot];
	unsigned char buf[65536];
	ssize_t n;

	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	c->last_active = learnd_now_ms();
	if (n <= 0 || conn_input(l, c, buf, (size_t)n) < 0)
		conn_close(l, slot);
}

void
learnd_control_expire(struct learnd *l)
{
	long long limit = learnd_now_ms() - (long long)l->cfg->idle_timeout_secs * 1000;
	unsigned int i = 0;

	while (i < l->nconns) {
		if (l->conns[i]->last_active < limit)
			conn_close(l, i);
		else
			i++;
	}
}

void
learnd_control_close_all(struct learnd *l)
{
	while (l->nconns > 0)
		conn_close(l, 0);
}
