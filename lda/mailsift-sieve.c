/* mailsift-sieve: the Sieve worker. Started by the delivery pipeline
 * (lib/ms-sieve-client.c) with a socket on stdin/stdout; runs one request at
 * a time until the socket closes. Dovecot's libraries may abort this process:
 * that costs the one delivery in progress, which the client turns into a
 * temporary failure. */
#include "ms-sieve.h"
#include "ms-sieve-client.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>

int
main(int argc, char *argv[])
{
	struct ms_sieve_settings set;
	struct ms_sieve_request req;
	struct ms_sieve_outcome out;
	char err[256], *buf;
	int ret;

	if (argc != 1) {
		fprintf(stderr, "mailsift-sieve is started by mailsift-lmtpd and mailsift-lda\n");
		return 64;
	}
	if (ms_sieve_init(err, sizeof(err)) < 0) {
		fprintf(stderr, "mailsift-sieve: %s\n", err);
		return 75;
	}
	while ((ret = ms_sieve_proto_read_request(STDIN_FILENO, &set, &req, &buf)) > 0) {
		ms_sieve_run(&set, &req, &out);
		free(buf);
		if (ms_sieve_proto_write_reply(STDOUT_FILENO, &out) < 0)
			break;
	}
	ms_sieve_deinit();
	return ret < 0 ? 75 : 0;
}
