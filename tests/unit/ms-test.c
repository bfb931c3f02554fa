#define _XOPEN_SOURCE 700
#include "ms-test.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

int
ms_test_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void
ms_test_mkdtemp(char *dir, size_t size, const char *name)
{
	int len = snprintf(dir, size, "/tmp/ms-test-%s.XXXXXX", name);

	ck_assert(len > 0 && (size_t)len < size);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int
remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

void
ms_test_rmtree(const char *dir)
{
	/* FTW_PHYS: a symlink a test planted is removed, never followed */
	ck_assert_int_eq(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}
