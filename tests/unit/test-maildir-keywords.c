#include "ms-maildir-keywords.h"
#include "ms-test.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void
setup(void)
{
	ms_test_mkdtemp(dir, sizeof(dir), "kw");
}

static void
teardown(void)
{
	ms_test_rmtree(dir);
}

static const char *
file_text(void)
{
	static char buf[4096];
	char path[128];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	if ((f = fopen(path, "r")) == NULL)
		return "";
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

START_TEST(test_new_keywords_are_added)
{
	char letters[MS_MAILDIR_KEYWORDS_MAX + 1], err[256];

	ck_assert_int_eq(ms_maildir_keyword_letters(dir, "$label1 work", letters, err, sizeof(err)),
	                 0);
	ck_assert_str_eq(letters, "ab");
	ck_assert_str_eq(file_text(), "0 $label1\n1 work\n");
	/* known ones keep their letter; a new one takes the next */
	ck_assert_int_eq(ms_maildir_keyword_letters(dir, "home work", letters, err, sizeof(err)),
	                 0);
	ck_assert_str_eq(letters, "bc");
	ck_assert_str_eq(file_text(), "0 $label1\n1 work\n2 home\n");
}
END_TEST

START_TEST(test_existing_file_is_read)
{
	char letters[MS_MAILDIR_KEYWORDS_MAX + 1], err[256], path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	f = fopen(path, "w");
	fputs("3 Junk\nbroken line\n40 toobig\n", f);
	fclose(f);
	ck_assert_int_eq(ms_maildir_keyword_letters(dir, "Junk", letters, err, sizeof(err)), 0);
	ck_assert_str_eq(letters, "d");
	ck_assert_str_eq(file_text(), "3 Junk\nbroken line\n40 toobig\n"); /* untouched */
}
END_TEST

START_TEST(test_at_most_26)
{
	char letters[MS_MAILDIR_KEYWORDS_MAX + 1], err[256], kws[512] = "";
	int i;

	for (i = 0; i < 30; i++)
		snprintf(kws + strlen(kws), sizeof(kws) - strlen(kws), "k%d ", i);
	ck_assert_int_eq(ms_maildir_keyword_letters(dir, kws, letters, err, sizeof(err)), 0);
	ck_assert_int_eq(strlen(letters), 26);
	ck_assert_int_eq(ms_maildir_keyword_letters(dir, "k29", letters, err, sizeof(err)), 0);
	ck_assert_str_eq(letters, "");
}
END_TEST

START_TEST(test_none)
{
	char letters[MS_MAILDIR_KEYWORDS_MAX + 1], err[256];

	ck_assert_int_eq(ms_maildir_keyword_letters(dir, NULL, letters, err, sizeof(err)), 0);
	ck_assert_str_eq(letters, "");
	ck_assert_str_eq(file_text(), "");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("maildir-keywords");
	TCase *tc = tcase_create("keywords");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_new_keywords_are_added);
	tcase_add_test(tc, test_existing_file_is_read);
	tcase_add_test(tc, test_at_most_26);
	tcase_add_test(tc, test_none);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
