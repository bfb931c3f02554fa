/* mailsift-lda: deliver one message from stdin, for an MTA's mda/pipe
 * transport. Exit codes are sysexits(3): 0 delivered, 64 usage, 67 unknown
 * user, 75 try again later (storage, lookup, config, too big), 77 refused. */
#include "ms-config.h"
#include "ms-deliver.h"
#include "ms-filter.h"
#include "ms-header.h"
#include "ms-log.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

struct lda_args {
	const char *config;
	struct ms_envelope env;
};

static void
usage(void)
{
	fprintf(stderr, "usage: mailsift-lda [-c config] -d user@domain [-f sender] "
	                "[-a original-recipient] [-m mailbox]\n");
}

static int
parse_args(int argc, char **argv, struct lda_args *args)
{
	int ch;

	memset(args, 0, sizeof(*args));
	args->config = MS_CONFIG_DEFAULT_PATH;
	while ((ch = getopt(argc, argv, "c:d:f:a:m:")) != -1) {
		switch (ch) {
		case 'c':
			args->config = optarg;
			break;
		case 'd':
			args->env.rcpt = optarg;
			break;
		case 'f':
			args->env.sender = optarg;
			break;
		case 'a':
			args->env.orig_rcpt = optarg;
			break;
		case 'm':
			args->env.mailbox = optarg;
			break;
		default:
			return -1;
		}
	}
	if (optind != argc || args->env.rcpt == NULL) {
		if (optind != argc)
			ms_log_error("unexpected argument \"%s\"", argv[optind]);
		else
			ms_log_error("-d user@domain is required");
		return -1;
	}
	return 0;
}

/* All of stdin, up to max + 1 bytes (one more tells "too big"). */
static int
read_message(size_t max, unsigned char **data_r, size_t *size_r)
{
	size_t size = 0, cap = 65536, limit = max < SIZE_MAX ? max + 1 : max;
	unsigned char *data = malloc(cap), *grown;
	ssize_t ret;

	if (data == NULL)
		return -1;
	while (size < limit) {
		if (size == cap) {
			cap *= 2;
			if (cap > limit)
				cap = limit;
			if ((grown = realloc(data, cap)) == NULL) {
				free(data);
				return -1;
			}
			data = grown;
		}
		ret = read(STDIN_FILENO, data + size, cap - size);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			free(data);
			return -1;
		}
		if (ret == 0)
			break;
		size += (size_t)ret;
	}
	*data_r = data;
	*size_r = size;
	return 0;
}

static int
exit_code(enum ms_deliver_status status)
{
	switch (status) {
	case MS_DELIVER_OK:
		return EX_OK;
	case MS_DELIVER_NOUSER:
		return EX_NOUSER;
	case MS_DELIVER_REJECTED:
		return EX_NOPERM;
	case MS_DELIVER_TEMPFAIL:
	case MS_DELIVER_DISKFULL:
	case MS_DELIVER_TOOBIG:
		break;
	}
	return EX_TEMPFAIL;
}

/* Without -f the sender is the message's Return-Path, as dovecot-lda does. */
static void
default_sender(struct ms_envelope *env, const struct ms_message *msg, char *buf, size_t bufsize)
{
	if (env->sender != NULL)
		return;
	if (ms_header_return_path(msg->data, ms_header_length(msg->data, msg->size), buf, bufsize))
		env->sender = buf;
	else
		env->sender = "MAILER-DAEMON";
}

static enum ms_deliver_status
deliver(const struct ms_config *cfg, struct ms_envelope *env, const struct ms_message *msg,
        struct ms_deliver_result *result)
{
	struct ms_verdict verdict;
	struct ms_filter *filter;
	struct ms_deliver *ctx;
	enum ms_deliver_status status;
	char sender[512];

	if ((ctx = ms_deliver_create(cfg)) == NULL) {
		snprintf(result->reason, sizeof(result->reason),
		         "cannot start delivery (see above)");
		return MS_DELIVER_TEMPFAIL;
	}
	default_sender(env, msg, sender, sizeof(sender));
	/* once per message; Redis trouble is an UNKNOWN verdict, never a
	 * failed delivery (the filter logs it) */
	if ((filter = ms_filter_create(cfg)) == NULL) {
		ms_deliver_destroy(&ctx);
		snprintf(result->reason, sizeof(result->reason), "cannot set up the filter");
		return MS_DELIVER_TEMPFAIL;
	}
	ms_filter_classify(filter, env->rcpt, msg->data, msg->size, &verdict);
	ms_filter_destroy(&filter);
	status = ms_deliver_message(ctx, env, msg, &verdict, result);
	ms_deliver_destroy(&ctx);
	return status;
}

int
main(int argc, char **argv)
{
	struct ms_deliver_result result;
	struct ms_message msg;
	struct ms_config cfg;
	struct lda_args args;
	unsigned char *data;
	size_t size, skip;
	char err[1024];
	int code;

	ms_log_open("mailsift-lda", true);
	if (parse_args(argc, argv, &args) < 0) {
		usage();
		return EX_USAGE;
	}
	ms_config_init(&cfg);
	/* a broken config must not bounce mail: the MTA keeps it and retries */
	if (ms_config_load(&cfg, args.config, err, sizeof(err)) < 0) {
		ms_log_error("config: %s", err);
		ms_config_free(&cfg);
		return EX_TEMPFAIL;
	}
	if (read_message(cfg.max_message_size, &data, &size) < 0) {
		ms_log_error("reading the message from stdin: %s", strerror(errno));
		ms_config_free(&cfg);
		return EX_TEMPFAIL;
	}
	skip = ms_header_mbox_from_length(data, size);
	msg = (struct ms_message){data + skip, size - skip};
	if (deliver(&cfg, &args.env, &msg, &result) == MS_DELIVER_OK)
		code = EX_OK;
	else {
		ms_log_error("%s: %s", args.env.rcpt, result.reason);
		code = exit_code(result.status);
	}
	free(data);
	ms_config_free(&cfg);
	return code;
}
