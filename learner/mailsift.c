/* mailsift: learn, classify and show statistics from the command line,
 * straight on the Redis store through ms_filter (one connection for all
 * files). The interface is a contract: scripts and bench/ depend on it. */
#include "ms-config.h"
#include "ms-filter.h"
#include "ms-log.h"
#include "ms-spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

/* learn and classify read up to CLI_BATCH files, CLI_BATCH_BYTES in all, then
 * process them together: a learn's batch is one store transaction
 * (doc/redis-schema.md, "Learn"). A buffer that grew past CLI_KEEP_BYTES
 * for a big message is given back after its batch. */
#define CLI_BATCH       64
#define CLI_BATCH_BYTES (16u << 20)
#define CLI_KEEP_BYTES  (1u << 20)

/* Buffers reused for every file of a run. */
struct msg_buf {
	unsigned char *data;
	size_t size, cap;
};

struct cli {
	struct ms_config cfg;
	struct ms_filter *filter;
	const char *user; /* NULL: the shared statistics */
	struct msg_buf bufs[CLI_BATCH];
};

static void
usage(void)
{
	fprintf(stderr, "usage: mailsift [-c CONF] [-u USER] learn spam|ham FILE...\n"
	                "       mailsift [-c CONF] [-u USER] classify FILE...\n"
	                "       mailsift [-c CONF] [-u USER] stats\n"
	                "FILE is one message; - reads it from stdin.\n");
	exit(EX_USAGE);
}

static int
buf_grow(struct msg_buf *buf, size_t want)
{
	unsigned char *bigger;
	size_t cap = buf->cap == 0 ? 65536 : buf->cap;

	while (cap < want)
		cap *= 2;
	if (cap == buf->cap)
		return 0;
	if ((bigger = realloc(buf->data, cap)) == NULL)
		return -1;
	buf->data = bigger;
	buf->cap = cap;
	return 0;
}

/* The whole of fd, at most max bytes. Returns 0 or -1 with errno (EFBIG). */
static int
read_fd(int fd, struct msg_buf *buf, size_t max)
{
	ssize_t n;

	buf->size = 0;
	for (;;) {
		if (buf->size == buf->cap && buf_grow(buf, buf->cap + 1) < 0)
			return -1;
		n = read(fd, buf->data + buf->size, buf->cap - buf->size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n;
		buf->size += (size_t)n;
		if (buf->size > max) {
			errno = EFBIG;
			return -1;
		}
	}
}

static int
read_message(struct cli *cli, const char *path, struct msg_buf *buf)
{
	int fd, ret;

	if (strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "mailsift: %s: %s\n", path, strerror(errno));
		return -1;
	}
	ret = read_fd(fd, buf, cli->cfg.max_message_size);
	if (ret < 0)
		fprintf(stderr, "mailsift: %s: %s\n", path,
		        errno == EFBIG ? "larger than max_message_size" : strerror(errno));
	else if (buf->size == 0) {
		fprintf(stderr, "mailsift: %s: empty message\n", path);
		ret = -1;
	}
	if (fd != STDIN_FILENO)
		(void)close(fd);
	return ret;
}

/* The files read for one batch, in cli's buffers. */
struct batch {
	struct ms_filter_message msgs[CLI_BATCH];
	const char *names[CLI_BATCH];
	size_t n;
};

/* Read paths[] until the batch is full; returns how many it took. Files
 * that cannot be read are reported and counted in *failed. */
static int
read_batch(struct cli *cli, char **paths, int count, struct batch *b, unsigned int *failed)
{
	size_t bytes = 0;
	int i;

	b->n = 0;
	for (i = 0; i < count && b->n < CLI_BATCH && bytes < CLI_BATCH_BYTES; i++) {
		if (read_message(cli, paths[i], &cli->bufs[b->n]) < 0) {
			(*failed)++;
			continue;
		}
		bytes += cli->bufs[b->n].size;
		b->msgs[b->n].data = cli->bufs[b->n].data;
		b->msgs[b->n].size = cli->bufs[b->n].size;
		b->names[b->n++] = paths[i];
	}
	return i;
}

static void
trim_bufs(struct cli *cli)
{
	size_t i;

	for (i = 0; i < CLI_BATCH; i++) {
		if (cli->bufs[i].cap > CLI_KEEP_BYTES) {
			free(cli->bufs[i].data);
			memset(&cli->bufs[i], 0, sizeof(cli->bufs[i]));
		}
	}
}

/* One batch of paths[] learned (ms_filter_learn_many); returns how many
 * paths it took. counts[] by result, the rest failed. */
static int
learn_batch(struct cli *cli, enum ms_class cls, char **paths, int count, unsigned int counts[3],
            unsigned int *failed)
{
	struct ms_learn_outcome outcomes[CLI_BATCH];
	struct batch b;
	int taken = read_batch(cli, paths, count, &b, failed);
	size_t i;

	ms_filter_learn_many(cli->filter, cli->user, cls, b.msgs, b.n, outcomes);
	for (i = 0; i < b.n; i++) {
		if (outcomes[i].status < 0) {
			fprintf(stderr, "mailsift: %s: %s\n", b.names[i], outcomes[i].err);
			(*failed)++;
		} else
			counts[outcomes[i].result]++;
	}
	trim_bufs(cli);
	return taken;
}

static int
cmd_learn(struct cli *cli, int argc, char **argv)
{
	unsigned int counts[3] = {0, 0, 0}, failed = 0;
	enum ms_class cls;
	int i, n;

	if (argc < 2 || ms_spool_class_parse(argv[0], &cls) < 0)
		usage();
	for (i = 1; i < argc; i += n)
		n = learn_batch(cli, cls, argv + i, argc - i, counts, &failed);
	printf("%s: %d files, %u learned, %u already learned, %u moved from %s, %u failed\n",
	       argv[0], argc - 1, counts[MS_LEARN_DONE], counts[MS_LEARN_ALREADY],
	       counts[MS_LEARN_MOVED], cls == MS_CLASS_SPAM ? "ham" : "spam", failed);
	return failed == 0 ? 0 : 1;
}

/* A message the filter could not score (Redis down, nothing learned yet)
 * still gets its line, as ham: what delivery would do with it. One batch of
 * paths[] classified pipelined (ms_filter_classify_many); returns how many
 * paths it took, *failed counts the files not classified. */
static int
classify_batch(struct cli *cli, char **paths, int count, unsigned int *failed)
{
	struct ms_verdict v[CLI_BATCH];
	struct batch b;
	int taken = read_batch(cli, paths, count, &b, failed);
	size_t i;

	ms_filter_classify_many(cli->filter, cli->user, b.msgs, b.n, v);
	for (i = 0; i < b.n; i++) {
		if (v[i].status != MS_VERDICT_OK) {
			fprintf(stderr, "mailsift: %s: not classified: %s\n", b.names[i],
			        v[i].reason);
			(*failed)++;
		}
		printf("%s\t%.4f\t%s\n", b.names[i], v[i].score,
		       v[i].status == MS_VERDICT_OK && v[i].spam ? "spam" : "ham");
	}
	trim_bufs(cli);
	return taken;
}

static int
cmd_classify(struct cli *cli, int argc, char **argv)
{
	unsigned int failed = 0;
	int i, n;

	if (argc < 1)
		usage();
	for (i = 0; i < argc; i += n)
		n = classify_batch(cli, argv + i, argc - i, &failed);
	return failed == 0 ? 0 : 1;
}

static int
cmd_stats(struct cli *cli, int argc, char **argv)
{
	struct ms_filter_stats st;
	char err[512];

	if (argc != 0)
		usage();
	if (ms_filter_stats(cli->filter, cli->user, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailsift: stats: %s\n", err);
		return 1;
	}
	if (cli->user != NULL)
		printf("user: %s\n", cli->user);
	printf("learned_spam: %llu\nlearned_ham: %llu\ntokens: %llu\ntable_slots: %llu\n"
	       "memory_bytes: %llu\n",
	       st.learned_spam, st.learned_ham, st.tokens, st.table_slots, st.memory_bytes);
	return 0;
}

static int
run_command(struct cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "learn") == 0)
		return cmd_learn(cli, argc - 1, argv + 1);
	if (strcmp(argv[0], "classify") == 0)
		return cmd_classify(cli, argc - 1, argv + 1);
	if (strcmp(argv[0], "stats") == 0)
		return cmd_stats(cli, argc - 1, argv + 1);
	usage();
	return EX_USAGE;
}

/* Options go before the command; -u is also taken after it ("stats -u"). */
static void
parse_options(int argc, char **argv, const char **conf_r, const char **user_r)
{
	int opt;

	while ((opt = getopt(argc, argv, "+c:u:")) != -1) {
		switch (opt) {
		case 'c':
			*conf_r = optarg;
			break;
		case 'u':
			*user_r = optarg;
			break;
		default:
			usage();
		}
	}
}

int
main(int argc, char **argv)
{
	const char *conf_path = MS_CONFIG_DEFAULT_PATH;
	struct cli cli;
	char err[1024];
	int ret, cmd_at, i;

	memset(&cli, 0, sizeof(cli));
	parse_options(argc, argv, &conf_path, &cli.user);
	if (optind >= argc)
		usage();
	cmd_at = optind;
	if (strcmp(argv[cmd_at], "stats") == 0) {
		optind = cmd_at + 1;
		parse_options(argc, argv, &conf_path, &cli.user);
		if (optind != argc)
			usage();
		argc = cmd_at + 1;
	}
	ms_log_open("mailsift", true);
	ms_config_init(&cli.cfg);
	if (ms_config_load(&cli.cfg, conf_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailsift: %s\n", err);
		ret = EX_CONFIG;
	} else if (cli.user != NULL && !cli.cfg.per_user) {
		fprintf(stderr, "mailsift: -u needs per_user = yes in %s\n", conf_path);
		ret = EX_USAGE;
	} else if ((cli.filter = ms_filter_create(&cli.cfg)) == NULL) {
		fprintf(stderr, "mailsift: cannot create the filter: out of memory\n");
		ret = EX_SOFTWARE;
	} else {
		ret = run_command(&cli, argc - cmd_at, argv + cmd_at);
		ms_filter_destroy(&cli.filter);
	}
	for (i = 0; i < CLI_BATCH; i++)
		free(cli.bufs[i].data);
	ms_config_free(&cli.cfg);
	return ret;
}
