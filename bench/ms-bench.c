/* bench/accuracy's driver for mailsift: learn and classify lists of message
 * files through libmailsift (the same ms_filter calls as delivery and the
 * learner), timed with the messages already in memory. Not installed, not a
 * test. */
#include "ms-config.h"
#include "ms-filter.h"
#include "ms-log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct message {
	char *path;
	unsigned char *data;
	size_t size;
};

struct message_list {
	struct message *items;
	size_t count;
};

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
	exit(1);
}

static unsigned char *
read_file(const char *path, size_t *size_r)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *data = NULL;
	long size;

	if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) != 0 || (data = malloc((size_t)size + 1)) == NULL ||
	    fread(data, 1, (size_t)size, fp) != (size_t)size)
		die("%s: cannot read", path);
	fclose(fp);
	*size_r = (size_t)size;
	return data;
}

static void
load_list(const char *list_path, struct message_list *list)
{
	FILE *fp = fopen(list_path, "r");
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	ssize_t len;

	if (fp == NULL)
		die("%s: cannot open", list_path);
	memset(list, 0, sizeof(*list));
	while ((len = getline(&line, &cap, fp)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (list->count == alloc) {
			alloc = alloc == 0 ? 1024 : alloc * 2;
			list->items = realloc(list->items, alloc * sizeof(*list->items));
			if (list->items == NULL)
				die("out of memory");
		}
		list->items[list->count].path = strdup(line);
		list->items[list->count].data = read_file(line, &list->items[list->count].size);
		list->count++;
	}
	free(line);
	fclose(fp);
}

static struct ms_filter_message *
messages_of(const struct message_list *list)
{
	struct ms_filter_message *msgs = calloc(list->count + 1, sizeof(*msgs));
	size_t i;

	if (msgs == NULL)
		die("out of memory");
	for (i = 0; i < list->count; i++) {
		msgs[i].data = list->items[i].data;
		msgs[i].size = list->items[i].size;
	}
	return msgs;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmd_learn(struct ms_filter *filter, const char *cls_name, const char *list_path)
{
	struct message_list list;
	struct ms_filter_message *msgs;
	struct ms_learn_outcome *outcomes;
	enum ms_class cls;
	double start;
	size_t i;

	if (strcmp(cls_name, "spam") == 0)
		cls = MS_CLASS_SPAM;
	else if (strcmp(cls_name, "ham") == 0)
		cls = MS_CLASS_HAM;
	else
		die("learn: class must be spam or ham");
	load_list(list_path, &list);
	msgs = messages_of(&list);
	if ((outcomes = calloc(list.count + 1, sizeof(*outcomes))) == NULL)
		die("out of memory");
	start = now();
	/* pipelined, as mailsift learn FILE... does */
	ms_filter_learn_many(filter, NULL, cls, msgs, list.count, outcomes);
	for (i = 0; i < list.count; i++) {
		if (outcomes[i].status < 0)
			die("%s: %s", list.items[i].path, outcomes[i].err);
	}
	printf("learn %s: %zu messages in %.3f s\n", cls_name, list.count, now() - start);
	return 0;
}

static int
cmd_classify(struct ms_filter *filter, const char *list_path)
{
	struct message_list list;
	struct ms_filter_message *msgs;
	struct ms_verdict *verdicts;
	double start, secs;
	size_t i;

	load_list(list_path, &list);
	msgs = messages_of(&list);
	if ((verdicts = calloc(list.count + 1, sizeof(*verdicts))) == NULL)
		die("out of memory");
	start = now();
	/* pipelined, as mailsift classify FILE... does */
	ms_filter_classify_many(filter, NULL, msgs, list.count, verdicts);
	secs = now() - start;
	for (i = 0; i < list.count; i++) {
		printf("%s\t%.6f\t%s\n", list.items[i].path, verdicts[i].score,
		       verdicts[i].status != MS_VERDICT_OK ? "unknown"
		       : verdicts[i].spam                  ? "spam"
		                                           : "ham");
	}
	fprintf(stderr, "classify: %zu messages in %.3f s\n", list.count, secs);
	return 0;
}

int
main(int argc, char **argv)
{
	struct ms_config cfg;
	struct ms_filter *filter;
	char err[512];
	int arg = 1, ret;

	ms_log_open("ms-bench", true);
	ms_config_init(&cfg);
	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		if (ms_config_load(&cfg, argv[2], err, sizeof(err)) < 0)
			die("%s", err);
		arg = 3;
	}
	if ((filter = ms_filter_create(&cfg)) == NULL)
		die("out of memory");
	if (argc - arg == 3 && strcmp(argv[arg], "learn") == 0)
		ret = cmd_learn(filter, argv[arg + 1], argv[arg + 2]);
	else if (argc - arg == 2 && strcmp(argv[arg], "classify") == 0)
		ret = cmd_classify(filter, argv[arg + 1]);
	else
		die("usage: ms-bench [-c CONF] learn spam|ham LIST | classify LIST");
	ms_filter_destroy(&filter);
	ms_config_free(&cfg);
	return ret;
}
