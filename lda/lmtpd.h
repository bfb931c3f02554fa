#ifndef LMTPD_H
#define LMTPD_H

/* mailsift-lmtpd: lib-smtp's server in LMTP mode in front of mailsift's
 * delivery pipeline (ms-deliver.h). main sets up the process, the server
 * owns the listeners and the sessions, a session is one LMTP client. */

struct ms_config;
struct ms_deliver;
struct ms_filter;
struct smtp_server;
struct lmtpd_server;
struct lmtpd_session;

/* What every session shares; owned by main. */
struct lmtpd_env {
	const struct ms_config *cfg;
	struct ms_deliver *deliver;
	struct ms_filter *filter;
	struct smtp_server *smtp;
};

/* lmtpd-server.c */
struct lmtpd_server *lmtpd_server_create(const struct lmtpd_env *env, const int *listen_fds,
                                         unsigned int listen_count);
/* SIGTERM: stop accepting, let transactions in progress finish, then stop
 * the ioloop. */
void lmtpd_server_shutdown(struct lmtpd_server *server);
void lmtpd_server_destroy(struct lmtpd_server **server);
void lmtpd_server_session_freed(struct lmtpd_server *server, struct lmtpd_session *session);

/* lmtpd-session.c */
struct lmtpd_session *lmtpd_session_create(const struct lmtpd_env *env, struct lmtpd_server *server,
                                           int fd);
/* Close now if no transaction is in progress, else right after it. */
void lmtpd_session_shutdown(struct lmtpd_session *session);
/* Close now whatever the state (the shutdown grace time is over). */
void lmtpd_session_terminate(struct lmtpd_session *session);

#endif
