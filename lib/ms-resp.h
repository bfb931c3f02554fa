#ifndef MS_RESP_H
#define MS_RESP_H

#include <stdbool.h>
#include <stddef.h>

/* A Redis command in the wire format (RESP), built in one buffer that is
 * reused from command to command. The token commands have thousands of
 * arguments: hiredis's argv formatting allocates and copies per argument,
 * this writes each one in place (doc/redis-schema.md, "Client cost").
 * Appends never fail; a failed allocation is remembered and reported by
 * ms_resp_failed(), so a caller checks once per command. */
struct ms_resp {
	char *data;
	size_t len;
	size_t size;
	bool failed;
};

void ms_resp_init(struct ms_resp *resp);
void ms_resp_free(struct ms_resp *resp);

/* Start a command of nargs arguments (the command name is one of them),
 * dropping what the buffer held. */
void ms_resp_command(struct ms_resp *resp, size_t nargs);
void ms_resp_arg(struct ms_resp *resp, const void *arg, size_t len);
void ms_resp_arg_str(struct ms_resp *resp, const char *arg);
/* prefix (e.g. '#' for a BITFIELD slot offset, '\0' for none) then value
 * in decimal, as one argument */
void ms_resp_arg_uint(struct ms_resp *resp, char prefix, unsigned long long value);

/* Arguments in wire form, encoded once and then appended by one copy: the
 * ones a token command repeats for every token ("GET" "u40" before each
 * slot). Like the command, it remembers a failure (an argument that did
 * not fit) and hands it on to the command it is appended to. */
struct ms_resp_fixed {
	char data[64];
	size_t len;
	bool failed;
};

void ms_resp_fixed_init(struct ms_resp_fixed *fixed);
void ms_resp_fixed_add(struct ms_resp_fixed *fixed, const char *arg);
void ms_resp_arg_fixed(struct ms_resp *resp, const struct ms_resp_fixed *fixed);

bool ms_resp_failed(const struct ms_resp *resp);

#endif
