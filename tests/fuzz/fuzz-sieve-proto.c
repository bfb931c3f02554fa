/* fuzz-sources: ms-sieve-client.c */
#include "ms-sieve-client.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the Sieve worker reads from its socket: a request from
 * mailsift-lmtpd or mailsift-lda. A damaged one must be refused (-1) or
 * read whole, its strings NUL-terminated inside the buffer, never more. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_sieve_settings set;
	struct ms_sieve_request req;
	volatile size_t sink;
	char *buf;
	int sv[2], ret;

	/* the socket holds the whole input: the reader sees EOF after it */
	if (size > 60000 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	if (size > 0 && write(sv[1], data, size) != (ssize_t)size)
		abort();
	close(sv[1]);
	ret = ms_sieve_proto_read_request(sv[0], &set, &req, &buf);
	close(sv[0]);
	if (ret <= 0) {
		if (buf != NULL)
			abort();
		return 0;
	}
	/* every string is readable up to its NUL (ASan checks the reads) */
	sink = strlen(set.script) + strlen(set.script_dir) + strlen(set.before) +
	       strlen(set.after) + strlen(set.sendmail) + strlen(set.postmaster) +
	       strlen(set.hostname) + strlen(req.user) + strlen(req.sender) + strlen(req.rcpt);
	if (req.msg[req.msg_size] != '\0')
		abort();
	(void)sink;
	free(buf);
	return 0;
}
