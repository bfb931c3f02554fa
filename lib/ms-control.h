#ifndef MS_CONTROL_H
#define MS_CONTROL_H

/* Requests on the learner socket (README.md, "The learner socket"): one
 * line each; LEARN and CLASSIFY are followed by SIZE bytes of message. */

#include <stddef.h>

#include "ms-filter.h"
#include "ms-spool.h"

enum ms_control_cmd {
	MS_CONTROL_UNKNOWN,
	MS_CONTROL_POKE,
	MS_CONTROL_STATS,
	MS_CONTROL_LEARN,
	MS_CONTROL_CLASSIFY,
	MS_CONTROL_QUIT,
};

struct ms_control_req {
	enum ms_control_cmd cmd;
	enum ms_class cls;                /* LEARN */
	size_t size;                      /* LEARN, CLASSIFY: bytes that follow */
	char user[MS_SPOOL_USER_MAX + 1]; /* "" for the shared statistics */
};

/* Parse one request line, without its "\n". SIZE must be 1..max_size.
 * Returns 0, or -1 with the reason in err; req->cmd is still set when the
 * verb was known (a bad LEARN or CLASSIFY cannot be skipped: its message
 * follows). */
int ms_control_parse(const char *line, size_t max_size, struct ms_control_req *req, char *err,
                     size_t errlen);

#endif
