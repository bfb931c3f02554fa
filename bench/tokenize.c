/* Parse + tokenize speed and memory over a corpus: every regular file
 * under the directories given (one message per file) is read into memory
 * first, then tokenized; reports messages/s, MB/s, tokens per message and
 * peak RSS. With -v FILE, prints the token texts of one message instead.
 * Built and run by bench/tokenize.sh. */
#include "ms-tokenize.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

struct message {
	unsigned char *data;
	size_t size;
};

struct corpus {
	struct message *msgs;
	size_t count, capacity, bytes;
};

static int
read_file(const char *path, struct message *msg)
{
	struct stat st;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	if (fstat(fileno(f), &st) < 0 || (msg->data = malloc((size_t)st.st_size + 1)) == NULL) {
		fclose(f);
		return -1;
	}
	msg->size = fread(msg->data, 1, (size_t)st.st_size, f);
	fclose(f);
	return 0;
}

static void
load_dir(struct corpus *c, const char *dir)
{
	struct dirent *de;
	struct stat st;
	char path[4096];
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			load_dir(c, path);
			continue;
		}
		if (!S_ISREG(st.st_mode) || strcmp(de->d_name, "README.md") == 0)
			continue;
		if (c->count == c->capacity) {
			c->capacity = c->capacity == 0 ? 1024 : c->capacity * 2;
			if ((c->msgs = realloc(c->msgs, c->capacity * sizeof(*c->msgs))) == NULL)
				exit(1);
		}
		if (read_file(path, &c->msgs[c->count]) == 0)
			c->bytes += c->msgs[c->count++].size;
	}
	closedir(d);
}

static void
print_token(const char *text, size_t len, uint64_t hash, void *context)
{
	(void)context;
	printf("%016llx %.*s\n", (unsigned long long)hash, (int)len, text);
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct corpus c = {0};
	struct ms_tokens tokens;
	struct message msg;
	struct rusage ru;
	size_t i, ntokens = 0;
	int rounds = 3, r;
	double start, secs, cpu_start, cpu;

	ms_tokens_init(&tokens);
	if (argc == 3 && strcmp(argv[1], "-v") == 0) {
		if (read_file(argv[2], &msg) < 0) {
			perror(argv[2]);
			return 1;
		}
		if (ms_tokenize_message_debug(msg.data, msg.size, &tokens, print_token, NULL) < 0)
			return 1;
		printf("%zu unique tokens\n", tokens.count);
		ms_tokens_free(&tokens);
		free(msg.data);
		return 0;
	}
	for (i = 1; i < (size_t)argc; i++)
		load_dir(&c, argv[i]);
	if (c.count == 0) {
		fprintf(stderr, "usage: tokenize DIR... | tokenize -v FILE\n");
		return 1;
	}
	start = now();
	cpu_start = cpu_seconds();
	for (r = 0; r < rounds; r++) {
		for (i = 0; i < c.count; i++) {
			if (ms_tokenize_message(c.msgs[i].data, c.msgs[i].size, &tokens) < 0)
				return 1;
			ntokens += tokens.count;
		}
	}
	secs = now() - start;
	cpu = cpu_seconds() - cpu_start;
	getrusage(RUSAGE_SELF, &ru);
	printf("messages %zu (%.1f MB), %d rounds\n", c.count, c.bytes / 1e6, rounds);
	/* per CPU second too: the wall clock counts other processes' turns */
	printf("parse+tokenize: %.0f msg/s wall, %.0f msg/s per CPU second, %.1f MB/s, "
	       "%.0f unique tokens/msg\n",
	       c.count * rounds / secs, c.count * rounds / cpu, c.bytes * rounds / secs / 1e6,
	       (double)ntokens / ((double)c.count * rounds));
	printf("peak RSS %ld kB (corpus held in memory: %.0f kB)\n", ru.ru_maxrss,
	       c.bytes / 1024.0);
	for (i = 0; i < c.count; i++)
		free(c.msgs[i].data);
	free(c.msgs);
	ms_tokens_free(&tokens);
	return 0;
}
