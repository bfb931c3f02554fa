#include "ms-config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Install paths come from the build (lib/Makefile.am); the fallbacks serve
 * harnesses that compile this file alone. */
#ifndef MS_PKGDATADIR
#define MS_PKGDATADIR "/usr/local/share/mailsift"
#endif
#ifndef MS_PKGLIBEXECDIR
#define MS_PKGLIBEXECDIR "/usr/local/libexec/mailsift"
#endif

enum ms_config_type {
	MS_CFG_STR,
	MS_CFG_BOOL,
	MS_CFG_UINT,
	MS_CFG_SIZE,
	MS_CFG_MODE,
	MS_CFG_PROB,
	MS_CFG_MSECS,
};

struct ms_config_key {
	const char *name;
	enum ms_config_type type;
	size_t offset;
	const char *def;
};

// clang-format off
#define KEY(name, type, def) {#name, type, offsetof(struct ms_config, name), def}
// clang-format on

/* The one list of keys: defaults live here and nowhere else. */
static const struct ms_config_key ms_config_keys[] = {
        KEY(userdb, MS_CFG_STR, "passwd-file:/etc/mail/credentials"),
        KEY(mail_location, MS_CFG_STR, "maildir:/var/vmail/%d/%n"),
        KEY(lmtp_socket, MS_CFG_STR, "/var/run/mailsift/lmtp.sock"),
        KEY(lmtp_listen, MS_CFG_STR, ""),
        KEY(lmtp_socket_mode, MS_CFG_MODE, "0666"),
        KEY(lmtp_socket_user, MS_CFG_STR, ""),
        KEY(lmtp_socket_group, MS_CFG_STR, ""),
        KEY(max_connections, MS_CFG_UINT, "100"),
        KEY(idle_timeout_secs, MS_CFG_UINT, "300"),
        KEY(hostname, MS_CFG_STR, ""),
        KEY(redis, MS_CFG_STR, "unix:/var/run/redis/redis.sock"),
        KEY(redis_read, MS_CFG_STR, ""),
        KEY(redis_prefix, MS_CFG_STR, "ms"),
        KEY(redis_timeout_msecs, MS_CFG_MSECS, "500"),
        KEY(token_table_bits, MS_CFG_UINT, "22"),
        KEY(spam_threshold, MS_CFG_PROB, "0.55"),
        KEY(per_user, MS_CFG_BOOL, "no"),
        KEY(junk_mailbox, MS_CFG_STR, "Junk"),
        KEY(spool_dir, MS_CFG_STR, "/var/spool/mailsift"),
        KEY(learner_socket, MS_CFG_STR, "/var/run/mailsift/learner.sock"),
        KEY(sieve, MS_CFG_STR, "~/.dovecot.sieve"),
        KEY(sieve_enabled, MS_CFG_BOOL, "yes"),
        KEY(sieve_dir, MS_CFG_STR, "~/sieve"),
        KEY(sieve_before, MS_CFG_STR, MS_PKGDATADIR "/sieve/spam-to-junk.sieve"),
        KEY(sieve_after, MS_CFG_STR, ""),
        KEY(sieve_worker, MS_CFG_STR, MS_PKGLIBEXECDIR "/mailsift-sieve"),
        KEY(sendmail_path, MS_CFG_STR, "/usr/sbin/sendmail"),
        KEY(postmaster_address, MS_CFG_STR, ""),
        KEY(max_message_size, MS_CFG_SIZE, "35M"),
        KEY(user, MS_CFG_STR, "vmail"),
        KEY(group, MS_CFG_STR, "vmail"),
        KEY(pid_file, MS_CFG_STR, ""),
};

#define N_KEYS (sizeof(ms_config_keys) / sizeof(ms_config_keys[0]))

static int __attribute__((format(printf, 6, 7)))
set_error(char *err, size_t errlen, const char *file, unsigned int lineno, const char *key,
          const char *fmt, ...)
{
	char msg[256];
	va_list args;

	va_start(args, fmt);
	vsnprintf(msg, sizeof(msg), fmt, args);
	va_end(args);
	if (key != NULL)
		snprintf(err, errlen, "%s:%u: %s: %s", file, lineno, key, msg);
	else
		snprintf(err, errlen, "%s:%u: %s", file, lineno, msg);
	return -1;
}

int
ms_parse_size(const char *str, size_t *size_r)
{
	unsigned long long value, mult = 1;
	char *end;

	if (!isdigit((unsigned char)*str))
		return -1;
	errno = 0;
	value = strtoull(str, &end, 10);
	if (errno != 0)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mult = 1024ULL;
		break;
	case 'M':
		mult = 1024ULL * 1024;
		break;
	case 'G':
		mult = 1024ULL * 1024 * 1024;
		break;
	default:
		return -1;
	}
	if (*end != '\0' && end[1] != '\0' &&
	    !(toupper((unsigned char)end[1]) == 'B' && end[2] == '\0'))
		return -1;
	if (value > SIZE_MAX / mult)
		return -1;
	*size_r = (size_t)(value * mult);
	return 0;
}

static int
parse_uint(const char *value, int base, unsigned long max, unsigned long *num_r)
{
	char *end;

	if (!isdigit((unsigned char)*value))
		return -1;
	errno = 0;
	*num_r = strtoul(value, &end, base);
	if (errno != 0 || *end != '\0' || *num_r > max)
		return -1;
	return 0;
}

static int
parse_bool(const char *value, bool *bool_r)
{
	if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
		*bool_r = true;
	else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
		*bool_r = false;
	else
		return -1;
	return 0;
}

static int
parse_prob(const char *value, double *prob_r)
{
	char *end;

	errno = 0;
	*prob_r = strtod(value, &end);
	if (*value == '\0' || errno != 0 || *end != '\0' || !(*prob_r >= 0.0 && *prob_r <= 1.0))
		return -1;
	return 0;
}

/* Returns NULL on success, else what was wrong with the value. */
static const char *
set_value(struct ms_config *cfg, const struct ms_config_key *key, const char *value)
{
	void *field = (char *)cfg + key->offset;
	unsigned long num;
	char *copy;

	switch (key->type) {
	case MS_CFG_STR:
		if ((copy = strdup(value)) == NULL)
			return "out of memory";
		free(*(char **)field);
		*(char **)field = copy;
		return NULL;
	case MS_CFG_BOOL:
		return parse_bool(value, field) < 0 ? "expected yes or no" : NULL;
	case MS_CFG_UINT:
	case MS_CFG_MSECS:
		if (parse_uint(value, 10, UINT_MAX, &num) < 0)
			return "expected a non-negative integer";
		*(unsigned int *)field = (unsigned int)num;
		return NULL;
	case MS_CFG_MODE:
		if (parse_uint(value, 8, 07777, &num) < 0)
			return "expected an octal file mode like 0660";
		*(mode_t *)field = (mode_t)num;
		return NULL;
	case MS_CFG_SIZE:
		return ms_parse_size(value, field) < 0 ? "expected a size like 35M, 512k or 1024"
		                                       : NULL;
	case MS_CFG_PROB:
		return parse_prob(value, field) < 0 ? "expected a number between 0 and 1" : NULL;
	}
	return "internal error: unknown key type";
}

void
ms_config_init(struct ms_config *cfg)
{
	const char *problem;
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < N_KEYS; i++) {
		problem = set_value(cfg, &ms_config_keys[i], ms_config_keys[i].def);
		if (problem != NULL) {
			/* only reachable if a default above is wrong or malloc fails */
			fprintf(stderr, "mailsift: default of %s: %s\n", ms_config_keys[i].name,
			        problem);
			abort();
		}
	}
}

static char *
trim(char *str)
{
	char *end;

	while (isspace((unsigned char)*str))
		str++;
	end = str + strlen(str);
	while (end > str && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return str;
}

static const struct ms_config_key *
find_key(const char *name)
{
	size_t i;

	for (i = 0; i < N_KEYS; i++) {
		if (strcmp(ms_config_keys[i].name, name) == 0)
			return &ms_config_keys[i];
	}
	return NULL;
}

int
ms_config_parse_line(struct ms_config *cfg, const char *line, const char *file, unsigned int lineno,
                     char *err, size_t errlen)
{
	const struct ms_config_key *key;
	const char *problem;
	char buf[4096], *name, *value, *eq;

	if (strlen(line) >= sizeof(buf))
		return set_error(err, errlen, file, lineno, NULL, "line too long");
	strcpy(buf, line);
	name = trim(buf);
	if (*name == '#' || *name == '\0')
		return 0;
	if ((eq = strchr(name, '=')) == NULL)
		return set_error(err, errlen, file, lineno, NULL,
		                 "expected \"key = value\", got \"%.40s\"", name);
	*eq = '\0';
	name = trim(name);
	value = trim(eq + 1);
	if ((key = find_key(name)) == NULL)
		return set_error(err, errlen, file, lineno, *name == '\0' ? "(empty)" : name,
		                 "unknown key");
	if ((problem = set_value(cfg, key, value)) != NULL)
		return set_error(err, errlen, file, lineno, name, "%s, got \"%.40s\"", problem,
		                 value);
	return 0;
}

int
ms_config_load(struct ms_config *cfg, const char *path, char *err, size_t errlen)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned int lineno = 0;
	ssize_t len;
	FILE *fp;
	int ret = 0;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (ret == 0 && (len = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		if (memchr(line, '\0', (size_t)len) != NULL)
			ret = set_error(err, errlen, path, lineno, NULL, "NUL byte in line");
		else
			ret = ms_config_parse_line(cfg, line, path, lineno, err, errlen);
	}
	if (ret == 0 && ferror(fp))
		ret = set_error(err, errlen, path, lineno, NULL, "read error");
	free(line);
	fclose(fp);
	return ret;
}

void
ms_config_free(struct ms_config *cfg)
{
	size_t i;

	for (i = 0; i < N_KEYS; i++) {
		if (ms_config_keys[i].type == MS_CFG_STR)
			free(*(char **)((char *)cfg + ms_config_keys[i].offset));
	}
	memset(cfg, 0, sizeof(*cfg));
}
