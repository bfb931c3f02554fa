#ifndef MS_CONFIG_H
#define MS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MS_CONFIG_DEFAULT_PATH "/etc/mailsift/mailsift.conf"

/* One field per key of mailsift.conf (see README.md "Configuration").
 * Strings are owned by the struct and freed by ms_config_free(). */
struct ms_config {
	char *userdb;
	char *mail_location;
	char *lmtp_socket;
	char *lmtp_listen;
	mode_t lmtp_socket_mode;
	char *lmtp_socket_user;
	char *lmtp_socket_group;
	unsigned int max_connections;
	unsigned int idle_timeout_secs;
	char *hostname;
	char *redis;
	char *redis_read;
	char *redis_prefix;
	unsigned int redis_timeout_msecs;
	unsigned int token_table_bits;
	double spam_threshold;
	bool per_user;
	char *junk_mailbox;
	char *spool_dir;
	char *learner_socket;
	char *sieve;
	bool sieve_enabled;
	char *sieve_dir;
	char *sieve_before;
	char *sieve_after;
	char *sieve_worker;
	char *sendmail_path;
	char *postmaster_address;
	size_t max_message_size;
	char *user;
	char *group;
	char *pid_file;
};

/* Fill cfg with the defaults. Never fails. */
void ms_config_init(struct ms_config *cfg);
/* Read path over the defaults. Returns 0, or -1 with a message
 * "FILE:LINE: key: problem" in err (size errlen). */
int ms_config_load(struct ms_config *cfg, const char *path, char *err, size_t errlen);
/* Apply one "key = value" line; file and line only label errors. */
int ms_config_parse_line(struct ms_config *cfg, const char *line, const char *file,
                         unsigned int lineno, char *err, size_t errlen);
void ms_config_free(struct ms_config *cfg);

/* "35M", "512k", "1G", "100" -> bytes. Returns 0 or -1 on bad input/overflow. */
int ms_parse_size(const char *str, size_t *size_r);

#endif
