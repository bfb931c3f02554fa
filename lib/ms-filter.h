#ifndef MS_FILTER_H
#define MS_FILTER_H

#include <stdbool.h>
#include <stddef.h>

struct ms_config;

/* The filter's answer for one message. status UNKNOWN means the filter could
 * not run (Redis down or slow, no training yet): the message is delivered
 * unfiltered and X-Spam-Status says Unknown with the reason. */
enum ms_verdict_status {
	MS_VERDICT_OK,
	MS_VERDICT_UNKNOWN,
};

struct ms_verdict {
	enum ms_verdict_status status;
	double score;          /* spam probability in [0,1] */
	bool spam;             /* score >= spam_threshold */
	unsigned int ntokens;  /* tokens that took part in the score */
	char reason[128];      /* short, for X-Spam-Status; "" if none */
};

struct ms_filter;

/* Connects lazily: creating never fails because Redis is down. */
struct ms_filter *ms_filter_create(const struct ms_config *cfg);
void ms_filter_destroy(struct ms_filter **filter);

/* Classify one whole message (as received; CRLF or LF). user is the
 * recipient for per_user statistics, or NULL for the shared ones. Always
 * fills verdict; never fails the delivery. */
void ms_filter_classify(struct ms_filter *filter, const char *user, const unsigned char *msg,
			size_t size, struct ms_verdict *verdict);

/* The three X-Spam-* header lines for verdict, each ending in "\n", written
 * to buf. Returns the length, or -1 if buf is too small. */
int ms_verdict_headers(const struct ms_verdict *verdict, char *buf, size_t bufsize);

#endif
