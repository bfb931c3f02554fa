/* mailsift-lmtpd: read the config, bind as root, detach, drop to the mail
 * user, then serve LMTP until SIGTERM. */
#include "lib.h"
#include "hostpid.h"
#include "ioloop.h"
#include "lib-signals.h"
#include "smtp-server.h"

#include "ms-config.h"
#include "ms-daemon.h"
#include "ms-deliver.h"
#include "ms-filter.h"
#include "ms-log.h"
#include "lmtpd.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <sysexits.h>
#include <unistd.h>

#define LMTPD_NAME          "mailsift-lmtpd"
#define LMTPD_DEFAULT_PID   "/var/run/mailsift/" LMTPD_NAME ".pid"
#define LMTPD_MAX_LISTENERS 2
/* Commands a client may send ahead of the replies. With 1, "BDAT n LAST"
 * after only failed recipients gets a 503 instead of RFC 2033's no reply. */
#define LMTPD_MAX_PIPELINED 16
/* Allocations from this size up are mmap()ed (glibc default: 128 KB, raised
 * to the largest one freed so far) */
#define LMTPD_MMAP_THRESHOLD (64 * 1024)

struct lmtpd_opts {
	const char *config_path;
	bool foreground;
};

static void
usage(void)
{
	fprintf(stderr, "usage: " LMTPD_NAME " [-F] [-c config]\n");
	exit(EX_USAGE);
}

static void
parse_args(int argc, char *argv[], struct lmtpd_opts *opts)
{
	int c;

	opts->config_path = MS_CONFIG_DEFAULT_PATH;
	opts->foreground = FALSE;
	while ((c = getopt(argc, argv, "c:F")) != -1) {
		switch (c) {
		case 'c':
			opts->config_path = optarg;
			break;
		case 'F':
			opts->foreground = TRUE;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
}

/* The socket's owner: lmtp_socket_user/group, else the daemon's user. */
static int
socket_owner(const struct ms_config *cfg, struct ms_daemon_user *owner, char *err, size_t errlen)
{
	const char *user = cfg->lmtp_socket_user[0] != '\0' ? cfg->lmtp_socket_user : cfg->user;
	const char *group = cfg->lmtp_socket_group[0] != '\0' ? cfg->lmtp_socket_group : cfg->group;

	return ms_daemon_lookup_user(user, group, owner, err, errlen);
}

/* Sockets are bound before the privileges go, so they may live in
 * root-owned directories and carry any owner. */
static int
open_listeners(const struct ms_config *cfg, int *fds, unsigned int *count_r, char *err,
               size_t errlen)
{
	struct ms_daemon_user owner;
	unsigned int count = 0;

	if (cfg->lmtp_socket[0] != '\0') {
		if (socket_owner(cfg, &owner, err, errlen) < 0 ||
		    (fds[count] = ms_daemon_listen_unix(cfg->lmtp_socket, cfg->lmtp_socket_mode,
		                                        &owner, err, errlen)) < 0)
			return -1;
		count++;
	}
	if (cfg->lmtp_listen[0] != '\0') {
		if ((fds[count] = ms_daemon_listen_tcp(cfg->lmtp_listen, err, errlen)) < 0)
			return -1;
		count++;
	}
	if (count == 0) {
		snprintf(err, errlen, "neither lmtp_socket nor lmtp_listen is set");
		return -1;
	}
	*count_r = count;
	return 0;
}

/* -F: stay in the foreground, log to stderr, no pid_file. */
static int
daemonize(const struct ms_config *cfg, const struct lmtpd_opts *opts, char *err, size_t errlen)
{
	const char *pid_file = cfg->pid_file[0] != '\0' ? cfg->pid_file : LMTPD_DEFAULT_PID;
	struct ms_daemon_user du;

	if (ms_daemon_lookup_user(cfg->user, cfg->group, &du, err, errlen) < 0)
		return -1;
	if (!opts->foreground) {
		/* from here stderr is gone: a failure to detach is in syslog */
		ms_log_open(LMTPD_NAME, FALSE);
		if (ms_daemon_detach(pid_file, err, errlen) < 0)
			return -1;
	}
	return ms_daemon_drop_privileges(&du, err, errlen);
}

static void
sig_shutdown(const siginfo_t *si ATTR_UNUSED, void *context)
{
	struct lmtpd_server *server = context;

	lmtpd_server_shutdown(server);
}

static void
sig_reopen_log(const siginfo_t *si ATTR_UNUSED, void *context ATTR_UNUSED)
{
	ms_log_reopen();
}

static void
smtp_settings(const struct ms_config *cfg, const char *hostname, struct smtp_server_settings *set)
{
	i_zero(set);
	set->protocol = SMTP_PROTOCOL_LMTP;
	set->capabilities = SMTP_CAPABILITY_PIPELINING | SMTP_CAPABILITY_ENHANCEDSTATUSCODES |
	                    SMTP_CAPABILITY_8BITMIME | SMTP_CAPABILITY_CHUNKING;
	set->hostname = hostname;
	set->login_greeting = "mailsift LMTP ready";
	set->max_client_idle_time_msecs = cfg->idle_timeout_secs * 1000U;
	set->max_pipelined_commands = LMTPD_MAX_PIPELINED;
	/* max_message_size stays 0: the session enforces and announces it */
	/* the parser's hard stop (it closes the connection) sits well above
	 * the polite 552, so an oversized message is read and refused */
	set->command_limits.max_data_size =
	        cfg->max_message_size + cfg->max_message_size / 4 + 1024 * 1024;
	set->auth_optional = TRUE;
	set->rcpt_domain_optional = TRUE;
	set->mail_path_allow_broken = TRUE;
}

static int
serve(const struct ms_config *cfg, const int *fds, unsigned int count)
{
	struct smtp_server_settings set;
	struct lmtpd_server *server;
	struct lmtpd_env env;
	struct ioloop *ioloop;

	i_zero(&env);
	env.cfg = cfg;
	if ((env.deliver = ms_deliver_create(cfg)) == NULL) {
		ms_log_error("cannot set up delivery");
		return -1;
	}
	/* never connects here: Redis may come up later, the filter follows */
	if ((env.filter = ms_filter_create(cfg)) == NULL) {
		ms_log_error("cannot set up the filter");
		ms_deliver_destroy(&env.deliver);
		return -1;
	}
	ioloop = io_loop_create();
	lib_signals_init();
	lib_signals_ignore(SIGPIPE, TRUE);
	smtp_settings(cfg, cfg->hostname[0] != '\0' ? cfg->hostname : my_hostname, &set);
	env.smtp = smtp_server_init(&set);
	server = lmtpd_server_create(&env, fds, count);
	lib_signals_set_handler(SIGTERM, LIBSIG_FLAGS_SAFE, sig_shutdown, server);
	lib_signals_set_handler(SIGINT, LIBSIG_FLAGS_SAFE, sig_shutdown, server);
	lib_signals_set_handler(SIGHUP, LIBSIG_FLAGS_SAFE, sig_reopen_log, NULL);
	ms_log_info("serving LMTP on %s%s%s", cfg->lmtp_socket,
	            cfg->lmtp_listen[0] != '\0' ? " and " : "", cfg->lmtp_listen);

	io_loop_run(ioloop);

	ms_log_info("stopped");
	smtp_server_deinit(&env.smtp);
	lmtpd_server_destroy(&server);
	lib_signals_deinit();
	io_loop_destroy(&ioloop);
	ms_filter_destroy(&env.filter);
	ms_deliver_destroy(&env.deliver);
	return 0;
}

int
main(int argc, char *argv[])
{
	int fds[LMTPD_MAX_LISTENERS];
	struct lmtpd_opts opts;
	struct ms_config cfg;
	unsigned int count;
	char err[1024];
	int ret = EXIT_FAILURE;

	parse_args(argc, argv, &opts);
	/* startup errors go to the terminal; syslog only once detached */
	ms_log_open(LMTPD_NAME, TRUE);
	/* A big message's buffers (message, tokens) come from mmap and go back
	 * to the kernel when freed, instead of staying in a heap that glibc's
	 * adaptive threshold lets grow to the largest message seen. */
	if (mallopt(M_MMAP_THRESHOLD, LMTPD_MMAP_THRESHOLD) != 1)
		ms_log_warning("mallopt(M_MMAP_THRESHOLD) failed");
	ms_config_init(&cfg);
	if (ms_config_load(&cfg, opts.config_path, err, sizeof(err)) < 0 ||
	    open_listeners(&cfg, fds, &count, err, sizeof(err)) < 0 ||
	    daemonize(&cfg, &opts, err, sizeof(err)) < 0) {
		ms_log_error("%s", err);
		ms_config_free(&cfg);
		return EXIT_FAILURE;
	}
	/* libdovecot comes up after the fork: its ioloop must be the child's */
	lib_init();
	if (!opts.foreground)
		i_set_failure_syslog(LMTPD_NAME, LOG_PID | LOG_NDELAY, LOG_MAIL);
	i_set_failure_prefix(LMTPD_NAME ": ");
	if (serve(&cfg, fds, count) == 0)
		ret = EXIT_SUCCESS;
	lib_deinit();
	ms_config_free(&cfg);
	return ret;
}
