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
	double score;         /* spam probability in [0,1] */
	bool spam;            /* score >= spam_threshold */
	unsigned int ntokens; /* tokens that took part in the score */
	char reason[128];     /* short, for X-Spam-Status; "" if none */
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

/* Classify many messages with the same verdicts as ms_filter_classify() one
 * by one, faster: the next message is tokenized while Redis answers for the
 * previous one (a pipeline on one connection). verdicts[i] for msgs[i]. */
struct ms_filter_message {
	const unsigned char *data;
	size_t size;
};

void ms_filter_classify_many(struct ms_filter *filter, const char *user,
                             const struct ms_filter_message *msgs, size_t count,
                             struct ms_verdict *verdicts);

enum ms_class {
	MS_CLASS_HAM,
	MS_CLASS_SPAM,
};

enum ms_learn_result {
	MS_LEARN_DONE,    /* counted for the first time */
	MS_LEARN_ALREADY, /* this message (digest) is already learned as this class */
	MS_LEARN_MOVED,   /* was learned as the other class: unlearned there, learned here */
};

/* Learn one message as cls, atomically. Returns 0, or -1 with err set when
 * the store could not confirm (Redis down): the caller keeps the training
 * event (spool file) and retries later. */
int ms_filter_learn(struct ms_filter *filter, const char *user, enum ms_class cls,
                    const unsigned char *msg, size_t size, enum ms_learn_result *result_r,
                    char *err, size_t errlen);

/* What ms_filter_learn() returns, for one message of ms_filter_learn_many. */
struct ms_learn_outcome {
	int status; /* 0, or -1 with err set */
	enum ms_learn_result result;
	char err[256];
};

/* Learn many messages as cls, with the results ms_filter_learn() of each in
 * order would give (once per digest), faster: up to 64 messages in one
 * transaction, a slot shared by several of them updated once
 * (doc/redis-schema.md, "Learn"), the next batch parsed and tokenized while
 * Redis runs it. A batch is atomic: if Redis fails, each of its messages
 * gets the error and none is learned. outcomes[i] for msgs[i]. */
void ms_filter_learn_many(struct ms_filter *filter, const char *user, enum ms_class cls,
                          const struct ms_filter_message *msgs, size_t count,
                          struct ms_learn_outcome *outcomes);

struct ms_filter_stats {
	unsigned long long learned_spam;
	unsigned long long learned_ham;
	unsigned long long tokens;       /* slots in use */
	unsigned long long table_slots;  /* 2^token_table_bits */
	unsigned long long memory_bytes; /* Redis used_memory */
};

int ms_filter_stats(struct ms_filter *filter, const char *user, struct ms_filter_stats *stats,
                    char *err, size_t errlen);

/* The three X-Spam-* header lines for verdict, each ending in "\n", written
 * to buf. Returns the length, or -1 if buf is too small. */
int ms_verdict_headers(const struct ms_verdict *verdict, char *buf, size_t bufsize);

#endif
