/* filter-learn: train the filter through ms_filter_learn(), for the e2e
 * tests while they do not go through the mailsift tool.
 * usage: filter-learn CONF spam|ham FILE... */
#include "ms-config.h"
#include "ms-filter.h"
#include "ms-log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
learn_file(struct ms_filter *filter, enum ms_class cls, const char *path)
{
	enum ms_learn_result result;
	unsigned char *data = NULL;
	char err[512];
	long size;
	FILE *fp;
	int ret = -1;

	if ((fp = fopen(path, "rb")) == NULL) {
		perror(path);
		return -1;
	}
	if (fseek(fp, 0, SEEK_END) == 0 && (size = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0 &&
	    (data = malloc((size_t)size + 1)) != NULL &&
	    fread(data, 1, (size_t)size, fp) == (size_t)size) {
		ret = ms_filter_learn(filter, NULL, cls, data, (size_t)size, &result, err,
		                      sizeof(err));
		if (ret < 0)
			fprintf(stderr, "filter-learn: %s: %s\n", path, err);
	} else
		fprintf(stderr, "filter-learn: %s: cannot read\n", path);
	free(data);
	fclose(fp);
	return ret;
}

int
main(int argc, char **argv)
{
	struct ms_filter *filter;
	struct ms_config cfg;
	enum ms_class cls;
	char err[512];
	int i, failed = 0;

	if (argc < 4 || (strcmp(argv[2], "spam") != 0 && strcmp(argv[2], "ham") != 0)) {
		fprintf(stderr, "usage: filter-learn CONF spam|ham FILE...\n");
		return 64;
	}
	ms_log_open("filter-learn", true);
	ms_config_init(&cfg);
	if (ms_config_load(&cfg, argv[1], err, sizeof(err)) < 0) {
		fprintf(stderr, "filter-learn: %s\n", err);
		return 1;
	}
	cls = strcmp(argv[2], "spam") == 0 ? MS_CLASS_SPAM : MS_CLASS_HAM;
	if ((filter = ms_filter_create(&cfg)) == NULL)
		return 1;
	for (i = 3; i < argc; i++)
		failed |= learn_file(filter, cls, argv[i]) < 0;
	ms_filter_destroy(&filter);
	ms_config_free(&cfg);
	return failed ? 1 : 0;
}
