#include "ms-dupdb.h"
#include "ms-test.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void
setup(void)
{
	int fd;

	strcpy(path, "/tmp/ms-test-dupdb.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static void
teardown(void)
{
	unlink(path);
}

START_TEST(test_mark_persists_until_expiry)
{
	char err[256];
	struct ms_dupdb *db = ms_dupdb_open(path, 100, err, sizeof(err));

	ck_assert_ptr_nonnull(db);
	ck_assert(!ms_dupdb_check(db, "id1", 3, 1000));
	ms_dupdb_mark(db, "id1", 3, time(NULL) + 3600);
	ck_assert(ms_dupdb_check(db, "id1", 3, time(NULL)));
	ck_assert_int_eq(ms_dupdb_commit(db, err, sizeof(err)), 0);

	db = ms_dupdb_open(path, 100, err, sizeof(err));
	ck_assert_ptr_nonnull(db);
	ck_assert(ms_dupdb_check(db, "id1", 3, time(NULL)));
	ck_assert(!ms_dupdb_check(db, "id2", 3, time(NULL)));
	/* past its expiry it is no duplicate any more */
	ck_assert(!ms_dupdb_check(db, "id1", 3, time(NULL) + 7200));
	ms_dupdb_rollback(db);
}
END_TEST

START_TEST(test_rollback_forgets)
{
	char err[256];
	struct ms_dupdb *db = ms_dupdb_open(path, 100, err, sizeof(err));

	ms_dupdb_mark(db, "x", 1, time(NULL) + 3600);
	ms_dupdb_rollback(db);
	db = ms_dupdb_open(path, 100, err, sizeof(err));
	ck_assert(!ms_dupdb_check(db, "x", 1, time(NULL)));
	ms_dupdb_rollback(db);
}
END_TEST

START_TEST(test_bounded_keeps_latest)
{
	char err[256], id[16];
	struct ms_dupdb *db = ms_dupdb_open(path, 10, err, sizeof(err));
	FILE *f;
	int i, lines = 0, c;

	for (i = 0; i < 50; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		ms_dupdb_mark(db, id, strlen(id), time(NULL) + 1000 + i);
	}
	ck_assert_int_eq(ms_dupdb_commit(db, err, sizeof(err)), 0);
	f = fopen(path, "r");
	while ((c = fgetc(f)) != EOF)
		lines += c == '\n';
	fclose(f);
	ck_assert_int_eq(lines, 10);
	db = ms_dupdb_open(path, 10, err, sizeof(err));
	ck_assert(ms_dupdb_check(db, "id49", 4, time(NULL)));
	ck_assert(!ms_dupdb_check(db, "id0", 3, time(NULL)));
	ms_dupdb_rollback(db);
}
END_TEST

START_TEST(test_damaged_file_is_skipped)
{
	char err[256];
	struct ms_dupdb *db;
	FILE *f = fopen(path, "w");

	fputs("garbage\nzz 12\n0123456789abcdef0123456789abcdef notanumber\n", f);
	fclose(f);
	db = ms_dupdb_open(path, 10, err, sizeof(err));
	ck_assert_ptr_nonnull(db);
	ck_assert(!ms_dupdb_check(db, "garbage", 7, time(NULL)));
	ms_dupdb_rollback(db);
}
END_TEST

START_TEST(test_unwritable_path_fails_cleanly)
{
	char err[256];

	ck_assert_ptr_null(ms_dupdb_open("/nonexistent-dir/dupes", 10, err, sizeof(err)));
	ck_assert(strstr(err, "/nonexistent-dir/dupes") != NULL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dupdb");
	TCase *tc = tcase_create("dupdb");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_mark_persists_until_expiry);
	tcase_add_test(tc, test_rollback_forgets);
	tcase_add_test(tc, test_bounded_keeps_latest);
	tcase_add_test(tc, test_damaged_file_is_skipped);
	tcase_add_test(tc, test_unwritable_path_fails_cleanly);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
