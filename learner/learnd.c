/* mailsift-learnd: learns the spool into Redis and serves the learner
 * socket (README.md, "The learner"). */
#include "learnd.h"

#include "ms-config.h"
#include "ms-daemon.h"
#include "ms-filter.h"
#include "ms-log.h"
#include "ms-spool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

volatile sig_atomic_t learnd_terminate;
static volatile sig_atomic_t learnd_reopen_logs;
static int learnd_signal_pipe[2] = {-1, -1};

long long
learnd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
learnd_signal(int signo)
{
	int saved_errno = errno;

	if (signo == SIGHUP)
		learnd_reopen_logs = 1;
	else
		learnd_terminate = 1;
	/* wakes poll(); a full pipe already will */
	(void)!write(learnd_signal_pipe[1], "", 1);
	errno = saved_errno;
}

static int
learnd_signals_init(char *err, size_t errlen)
{
	struct sigaction sa;

	if (pipe(learnd_signal_pipe) < 0 || fcntl(learnd_signal_pipe[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(learnd_signal_pipe[1], F_SETFL, O_NONBLOCK) < 0) {
		snprintf(err, errlen, "signal pipe: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = learnd_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	return 0;
}

static void
learnd_drain_signals(void)
{
	char buf[64];

	while (read(learnd_signal_pipe[0], buf, sizeof(buf)) > 0)
		;
	if (learnd_reopen_logs) {
		learnd_reopen_logs = 0;
		ms_log_reopen();
		ms_log_info("logs reopened");
	}
}

/* How long poll() may sleep: until the timer, or the Redis retry. */
static int
learnd_poll_timeout(const struct learnd *l)
{
	long long now = learnd_now_ms(), until = l->next_scan;

	if (l->pin_wanted)
		return 0;
	if (l->spool_wanted)
		until = l->retry_at;
	if (until <= now)
		return 0;
	return until - now > 60000 ? 60000 : (int)(until - now);
}

static void
learnd_poll_once(struct learnd *l)
{
	struct pollfd pfds[2 + LEARND_MAX_CONNS];
	unsigned int i, n = l->nconns;

	pfds[0].fd = learnd_signal_pipe[0];
	pfds[1].fd = l->listen_fd;
	for (i = 0; i < n; i++)
		pfds[2 + i].fd = learnd_control_fd(l, i);
	for (i = 0; i < 2 + n; i++)
		pfds[i].events = POLLIN;
	if (poll(pfds, 2 + n, learnd_poll_timeout(l)) < 0) {
		if (errno != EINTR)
			ms_log_error("poll: %s", strerror(errno));
		return;
	}
	if (pfds[0].revents != 0)
		learnd_drain_signals();
	/* backwards: closing slot i moves the last, already served, into it */
	for (i = n; i-- > 0;) {
		if (pfds[2 + i].revents != 0 && !learnd_terminate)
			learnd_control_io(l, i, pfds[2 + i].revents);
	}
	if (pfds[1].revents != 0)
		learnd_control_accept(l);
}

static void
learnd_run(struct learnd *l)
{
	long long now;

	l->spool_wanted = true; /* whatever waited while we were down */
	l->pin_wanted = true;
	l->backoff_ms = LEARND_BACKOFF_MIN_MS;
	l->next_scan = learnd_now_ms() + LEARND_SCAN_SECS * 1000;
	learnd_spool_clean(l);
	while (!learnd_terminate) {
		learnd_poll_once(l);
		now = learnd_now_ms();
		if (now >= l->next_scan) {
			l->spool_wanted = true;
			l->pin_wanted = true;
			l->next_scan = now + LEARND_SCAN_SECS * 1000;
			learnd_control_expire(l);
			learnd_spool_clean(l);
		}
		/* Pinning waits neither for Redis nor for a backlog to be
		   learned: an expunge meanwhile would lose the messages. */
		if (l->pin_wanted && !learnd_terminate)
			learnd_spool_pin_all(l);
		if (l->spool_wanted && now >= l->retry_at && !learnd_terminate)
			learnd_spool_batch(l);
	}
	ms_log_info("terminating");
}

/* Everything that needs root: the spool's owner, the socket, pid_file. */
static int
learnd_setup(struct learnd *l, bool foreground, char *err, size_t errlen)
{
	struct ms_daemon_user du;
	const struct ms_config *cfg = l->cfg;
	const char *pid_file = cfg->pid_file[0] != '\0' ? cfg->pid_file : LEARND_PID_FILE;

	l->max_file_size = cfg->max_message_size + MS_SPOOL_HEADER_MAX;
	if (ms_daemon_lookup_user(cfg->user, cfg->group, &du, err, errlen) < 0 ||
	    ms_spool_mkdirs(cfg->spool_dir, du.is_root ? du.uid : (uid_t)-1, du.gid, err, errlen) <
	            0 ||
	    learnd_signals_init(err, errlen) < 0)
		return -1;
	if ((l->listen_fd = ms_daemon_listen_unix(cfg->learner_socket, 0660, &du, err, errlen)) < 0)
		return -1;
	if (!foreground) {
		ms_log_open("mailsift-learnd", false);
		if (ms_daemon_detach(pid_file, err, errlen) < 0)
			return -1;
	}
	return ms_daemon_drop_privileges(&du, err, errlen);
}

/* Returns the exit status. */
static int
learnd_main(struct ms_config *cfg, const char *conf_path, bool foreground)
{
	struct learnd l;
	char err[1024];
	int ret = 0;

	memset(&l, 0, sizeof(l));
	l.cfg = cfg;
	l.listen_fd = -1;
	if (ms_config_load(cfg, conf_path, err, sizeof(err)) < 0)
		ret = EX_CONFIG;
	else if (learnd_setup(&l, foreground, err, sizeof(err)) < 0)
		ret = EX_OSERR;
	else if ((l.filter = ms_filter_create(cfg)) == NULL) {
		snprintf(err, sizeof(err), "cannot create the filter: out of memory");
		ret = EX_SOFTWARE;
	}
	if (ret != 0) {
		ms_log_error("%s", err);
	} else {
		ms_log_info("started: spool %s, socket %s", cfg->spool_dir, cfg->learner_socket);
		learnd_run(&l);
		learnd_control_close_all(&l);
		learnd_spool_free(&l);
		ms_filter_destroy(&l.filter);
		(void)unlink(cfg->learner_socket);
	}
	if (l.listen_fd >= 0)
		(void)close(l.listen_fd);
	return ret;
}

static void
usage(void)
{
	fprintf(stderr, "usage: mailsift-learnd [-F] [-d] [-c CONF]\n");
	exit(EX_USAGE);
}

int
main(int argc, char **argv)
{
	const char *conf_path = MS_CONFIG_DEFAULT_PATH;
	struct ms_config cfg;
	bool foreground = false;
	int opt, ret;

	while ((opt = getopt(argc, argv, "c:dF")) != -1) {
		switch (opt) {
		case 'c':
			conf_path = optarg;
			break;
		case 'd':
			ms_log_set_debug(true);
			break;
		case 'F':
			foreground = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	ms_log_open("mailsift-learnd", true);
	ms_config_init(&cfg);
	ret = learnd_main(&cfg, conf_path, foreground);
	ms_config_free(&cfg);
	return ret;
}
