/* spool-write: put messages into the training spool the way the Dovecot
 * plugin and the pipe helper do (lib/ms-spool.c), for the e2e tests.
 * usage: spool-write [-b] [-p LEARNER_SOCKET] SPOOL_DIR USER spam|ham FILE...
 * -b: one batch file carrying all FILEs, as the plugin writes for a MOVE. */
#include "ms-spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* One record: the file's size, then its bytes. */
static int
batch_add(struct ms_spool_writer *w, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd, ret = -1;

	if ((fd = open(path, O_RDONLY)) < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	} else if (ms_spool_record_begin(w, (size_t)st.st_size, err, errlen) == 0) {
		if (ms_spool_write_fd(w, fd, err, errlen) == 0)
			ret = ms_spool_record_end(w, err, errlen);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

static int
spool_batch(const char *spool_dir, const char *user, enum ms_class cls, char **paths, int n)
{
	struct ms_spool_writer *w;
	char err[512];
	int i, ret = -1;

	if (ms_spool_batch_begin(spool_dir, user, cls, &w, err, sizeof(err)) == 0) {
		for (i = 0, ret = 0; i < n && ret == 0; i++)
			ret = batch_add(w, paths[i], err, sizeof(err));
		if (ret == 0)
			ret = ms_spool_commit(&w, err, sizeof(err));
		else
			ms_spool_abort(&w);
	}
	if (ret < 0)
		fprintf(stderr, "spool-write: %s\n", err);
	return ret;
}

int
main(int argc, char **argv)
{
	const char *poke = NULL;
	enum ms_class cls;
	bool batch = false;
	int opt, i, failed = 0;

	while ((opt = getopt(argc, argv, "bp:")) != -1) {
		if (opt == 'b')
			batch = true;
		else if (opt == 'p')
			poke = optarg;
		else
			return 64;
	}
	argc -= optind;
	argv += optind;
	if (argc < 4 || ms_spool_class_parse(argv[2], &cls) < 0) {
		fprintf(stderr,
		        "usage: spool-write [-b] [-p SOCKET] SPOOL_DIR USER spam|ham FILE...\n");
		return 64;
	}
	if (batch)
		failed = spool_batch(argv[0], argv[1], cls, argv + 3, argc - 3) < 0;
	for (i = 3; i < argc && !batch; i++)
		failed += spool_file(argv[0], argv[1], cls, argv[i]) < 0;
	if (poke != NULL)
		(void)ms_spool_poke(poke);
	return failed == 0 ? 0 : 1;
}
