/* mailsift-spool-learn: the imap_sieve route's pipe helper. report-spam.sieve
 * and report-ham.sieve pipe the moved message here (CRLF, on stdin); it
 * becomes a training event in the spool, exactly as the Dovecot plugin
 * writes one, and the learner is poked without waiting for it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "ms-config.h"
#include "ms-spool.h"

#define DEFAULT_MAX_SIZE (1024 * 1024)

static void
usage(void)
{
	fprintf(stderr, "usage: mailsift-spool-learn [-c conf] [-s max-size] spam|ham [user]\n");
	exit(EX_USAGE);
}

/* Copies stdin into the writer. Returns 1 when all of it fit in max_size,
 * 0 when the message is bigger (the rest is read and dropped, so the
 * sender sees no broken pipe), -1 on errors. */
static int
copy_stdin(struct ms_spool_writer *writer, size_t max_size, char *err, size_t errlen)
{
	char buf[65536];
	size_t total = 0;
	ssize_t ret;

	for (;;) {
		ret = read(STDIN_FILENO, buf, sizeof(buf));
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			snprintf(err, errlen, "read(stdin): %s", strerror(errno));
			return -1;
		}
		if (ret == 0)
			return total > max_size ? 0 : 1;
		if (total > max_size)
			continue;
		total += (size_t)ret;
		if (total > max_size)
			continue;
		if (ms_spool_write(writer, buf, (size_t)ret, err, errlen) < 0)
			return -1;
	}
}

static int
spool_stdin(const struct ms_config *cfg, const char *user, enum ms_class cls, size_t max_size)
{
	struct ms_spool_writer *writer;
	char err[512];
	int ret;

	if (ms_spool_begin(cfg->spool_dir, user, cls, &writer, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailsift-spool-learn: %s\n", err);
		return EX_TEMPFAIL;
	}
	ret = copy_stdin(writer, max_size, err, sizeof(err));
	if (ret <= 0) {
		ms_spool_abort(&writer);
		if (ret == 0) {
			/* Like the plugin: a huge message is skipped, not an error. */
			fprintf(stderr, "mailsift-spool-learn: not learned: over %zu bytes\n",
			        max_size);
			return EX_OK;
		}
		fprintf(stderr, "mailsift-spool-learn: %s\n", err);
		return EX_TEMPFAIL;
	}
	if (ms_spool_commit(&writer, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailsift-spool-learn: %s\n", err);
		return EX_TEMPFAIL;
	}
	(void)ms_spool_poke(cfg->learner_socket);
	return EX_OK;
}

int
main(int argc, char *argv[])
{
	const char *conf = MS_CONFIG_DEFAULT_PATH, *user;
	struct ms_config cfg;
	size_t max_size = DEFAULT_MAX_SIZE;
	enum ms_class cls;
	char err[512];
	int ch, ret;

	while ((ch = getopt(argc, argv, "c:s:")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 's':
			if (ms_parse_size(optarg, &max_size) < 0)
				usage();
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > 2 || ms_spool_class_parse(argv[0], &cls) < 0)
		usage();
	/* Pigeonhole's pipe sets USER to the mail user. */
	user = argc == 2 ? argv[1] : getenv("USER");
	if (user == NULL || *user == '\0') {
		fprintf(stderr, "mailsift-spool-learn: no user: give it as an argument\n");
		return EX_USAGE;
	}

	ms_config_init(&cfg);
	if (ms_config_load(&cfg, conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailsift-spool-learn: %s\n", err);
		ms_config_free(&cfg);
		return EX_CONFIG;
	}
	ret = spool_stdin(&cfg, user, cls, max_size);
	ms_config_free(&cfg);
	return ret;
}
