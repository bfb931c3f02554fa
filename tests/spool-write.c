/* spool-write: put messages into the training spool the way the Dovecot
 * plugin and the pipe helper do (lib/ms-spool.c), for the e2e tests.
 * usage: spool-write [-p LEARNER_SOCKET] SPOOL_DIR USER spam|ham FILE... */
#include "ms-spool.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
spool_file(const char *spool_dir, const char *user, enum ms_class cls, const char *path)
{
	struct ms_spool_writer *w;
	char err[512];
	int fd, ret = -1;

	if ((fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY)) < 0) {
		perror(path);
		return -1;
	}
	if (ms_spool_begin(spool_dir, user, cls, &w, err, sizeof(err)) == 0) {
		if (ms_spool_write_fd(w, fd, err, sizeof(err)) == 0)
			ret = ms_spool_commit(&w, err, sizeof(err));
		else
			ms_spool_abort(&w);
	}
	if (ret < 0)
		fprintf(stderr, "spool-write: %s: %s\n", path, err);
	if (fd != 0)
		close(fd);
	return ret;
}

int
main(int argc, char **argv)
{
	const char *poke = NULL;
	enum ms_class cls;
	int opt, i, failed = 0;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		if (opt != 'p')
			return 64;
		poke = optarg;
	}
	argc -= optind;
	argv += optind;
	if (argc < 4 || ms_spool_class_parse(argv[2], &cls) < 0) {
		fprintf(stderr, "usage: spool-write [-p SOCKET] SPOOL_DIR USER spam|ham FILE...\n");
		return 64;
	}
	for (i = 3; i < argc; i++)
		failed += spool_file(argv[0], argv[1], cls, argv[i]) < 0;
	if (poke != NULL)
		(void)ms_spool_poke(poke);
	return failed == 0 ? 0 : 1;
}
