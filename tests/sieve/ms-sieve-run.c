/* Runs mailsift's Sieve (lib/ms-sieve.h) on one message and prints the
 * outcome in the normalised form tests/e2e/test-sieve-diff.py compares with
 * Pigeonhole's own sieve-test:
 *   store FOLDER [FLAG...]    one line per folder, flags lower-case, sorted
 *   reject                    the script rejected the message
 *   tempfail                  nothing decided
 * Redirects and vacation replies go to the sendmail given with -s. */
#include "ms-sieve.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
print_store(const struct ms_sieve_store *store)
{
	static const char *const flag_names[] = {"\\answered", "\\flagged", "\\deleted", "\\seen",
	                                         "\\draft"};
	char keywords[MS_SIEVE_KEYWORDS_MAX], *words[64], *p, *save = NULL;
	unsigned int i, n = 0;

	for (i = 0; i < 5; i++) {
		if ((store->flags & (1u << i)) != 0)
			words[n++] = (char *)flag_names[i];
	}
	strcpy(keywords, store->keywords);
	for (p = strtok_r(keywords, " ", &save); p != NULL && n < 64;
	     p = strtok_r(NULL, " ", &save)) {
		for (char *c = p; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		words[n++] = p;
	}
	qsort(words, n, sizeof(words[0]), cmp_str);
	printf("store %s", store->folder);
	for (i = 0; i < n; i++) {
		if (i == 0 || strcmp(words[i], words[i - 1]) != 0)
			printf(" %s", words[i]);
	}
	printf("\n");
}

static unsigned char *
read_file(const char *path, size_t *size_r)
{
	FILE *f = fopen(path, "rb");
	unsigned char *data;
	long size;

	if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0 || (data = malloc((size_t)size + 1)) == NULL ||
	    fread(data, 1, (size_t)size, f) != (size_t)size) {
		perror(path);
		exit(2);
	}
	fclose(f);
	*size_r = (size_t)size;
	return data;
}

int
main(int argc, char *argv[])
{
	struct ms_sieve_settings set = {
	        .script = "",
	        .script_dir = "",
	        .before = "",
	        .after = "",
	        .sendmail = "/usr/sbin/sendmail",
	        .postmaster = "",
	        .hostname = "",
	        .dup_max = 1000,
	};
	struct ms_sieve_request req = {
	        .user = "user@example.test",
	        .home = NULL,
	        .sender = "sender@example.org",
	        .rcpt = "user@example.test",
	};
	struct ms_sieve_outcome out;
	char err[256];
	unsigned int i;
	int c;

	unsigned int repeat = 1;
	struct timespec t0, t1;

	while ((c = getopt(argc, argv, "a:b:d:f:H:m:n:r:s:u:")) != -1) {
		switch (c) {
		case 'a':
			set.after = optarg;
			break;
		case 'b':
			set.before = optarg;
			break;
		case 'd':
			set.script_dir = optarg;
			break;
		case 'f':
			req.sender = optarg;
			break;
		case 'H':
			req.home = optarg;
			break;
		case 'm':
			req.mailbox = optarg;
			break;
		case 'n':
			repeat = (unsigned int)atoi(optarg);
			break;
		case 'r':
			req.rcpt = optarg;
			break;
		case 's':
			set.sendmail = optarg;
			break;
		case 'u':
			req.user = optarg;
			break;
		default:
			fprintf(stderr, "usage: ms-sieve-run [-a after] [-b before] [-d dir] "
			                "[-f sender] [-H home] [-m mailbox] [-n runs] [-r rcpt] "
			                "[-s sendmail] "
			                "[-u user] SCRIPT MESSAGE\n");
			return 64;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "need SCRIPT and MESSAGE\n");
		return 64;
	}
	set.script = argv[optind];
	req.msg = read_file(argv[optind + 1], &req.msg_size);
	if (ms_sieve_init(err, sizeof(err)) < 0) {
		fprintf(stderr, "ms_sieve_init: %s\n", err);
		return 1;
	}
	/* -n N: run N times and report the rate on stderr (a micro-benchmark
	 * of the worker's per-message cost, without any disk writes) */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < repeat; i++)
		ms_sieve_run(&set, &req, &out);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (repeat > 1)
		fprintf(stderr, "%u runs, %.0f runs/s\n", repeat,
		        repeat / ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9));
	switch (out.status) {
	case MS_SIEVE_DELIVER:
		for (i = 0; i < out.n_stores; i++)
			print_store(&out.stores[i]);
		break;
	case MS_SIEVE_REJECT:
		printf("reject\n");
		break;
	case MS_SIEVE_TEMPFAIL:
		printf("tempfail %s\n", out.reason);
		break;
	}
	ms_sieve_deinit();
	free((void *)req.msg);
	return 0;
}
