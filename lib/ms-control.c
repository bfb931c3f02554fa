#include "ms-control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 4

static const struct {
	const char *verb;
	enum ms_control_cmd cmd;
	unsigned int min_args, max_args;
	const char *usage;
} verbs[] = {
        {"POKE", MS_CONTROL_POKE, 0, 0, "POKE"},
        {"STATS", MS_CONTROL_STATS, 0, 1, "STATS [USER]"},
        {"LEARN", MS_CONTROL_LEARN, 2, 3, "LEARN spam|ham SIZE [USER]"},
        {"CLASSIFY", MS_CONTROL_CLASSIFY, 1, 2, "CLASSIFY SIZE [USER]"},
        {"QUIT", MS_CONTROL_QUIT, 0, 0, "QUIT"},
};

/* Splits on single spaces into at most MAX_WORDS + 1 words (one more than
 * any request has, to notice extra words). Returns the count, or -1 for
 * control characters or empty words. */
static int
split_words(char *buf, char **words)
{
	char *p;
	int n = 0;

	for (p = buf; *p != '\0'; p++) {
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			return -1;
	}
	for (p = buf; n <= MAX_WORDS; n++) {
		words[n] = p;
		if ((p = strchr(p, ' ')) == NULL)
			return *words[n] == '\0' ? -1 : n + 1;
		*p++ = '\0';
		if (*words[n] == '\0')
			return -1;
	}
	return n;
}

static int
parse_size(const char *str, size_t max_size, size_t *size_r)
{
	unsigned long long value;
	char *end;

	if (*str < '0' || *str > '9')
		return -1;
	errno = 0;
	value = strtoull(str, &end, 10);
	if (errno != 0 || *end != '\0' || value == 0 || value > max_size)
		return -1;
	*size_r = (size_t)value;
	return 0;
}

/* Arguments after the verb: LEARN's class, the size, the optional user. */
static int
parse_args(char **args, unsigned int nargs, size_t max_size, struct ms_control_req *req, char *err,
           size_t errlen)
{
	if (req->cmd == MS_CONTROL_LEARN) {
		if (ms_spool_class_parse(args[0], &req->cls) < 0) {
			snprintf(err, errlen, "class must be spam or ham");
			return -1;
		}
		args++;
		nargs--;
	}
	if (req->cmd == MS_CONTROL_LEARN || req->cmd == MS_CONTROL_CLASSIFY) {
		if (parse_size(args[0], max_size, &req->size) < 0) {
			snprintf(err, errlen, "message size must be 1..%zu", max_size);
			return -1;
		}
		args++;
		nargs--;
	}
	if (nargs == 1) {
		if (strlen(args[0]) > MS_SPOOL_USER_MAX) {
			snprintf(err, errlen, "user name too long");
			return -1;
		}
		strcpy(req->user, args[0]);
	}
	return 0;
}

int
ms_control_parse(const char *line, size_t max_size, struct ms_control_req *req, char *err,
                 size_t errlen)
{
	char buf[1024], *words[MAX_WORDS + 1];
	unsigned int i;
	int n;

	memset(req, 0, sizeof(*req));
	if (strlen(line) >= sizeof(buf)) {
		snprintf(err, errlen, "line too long");
		return -1;
	}
	strcpy(buf, line);
	if ((n = split_words(buf, words)) < 0) {
		snprintf(err, errlen, "malformed request line");
		return -1;
	}
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(words[0], verbs[i].verb) != 0)
			continue;
		req->cmd = verbs[i].cmd;
		if ((unsigned int)n - 1 < verbs[i].min_args ||
		    (unsigned int)n - 1 > verbs[i].max_args) {
			snprintf(err, errlen, "usage: %s", verbs[i].usage);
			return -1;
		}
		return parse_args(words + 1, (unsigned int)n - 1, max_size, req, err, errlen);
	}
	snprintf(err, errlen, "unknown command");
	return -1;
}
