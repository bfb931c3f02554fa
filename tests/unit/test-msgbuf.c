#include "ms-msgbuf.h"
#include "ms-test.h"

#include <check.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned char *
pattern(size_t size)
{
	unsigned char *data = malloc(size);
	size_t i;

	ck_assert_ptr_nonnull(data);
	for (i = 0; i < size; i++)
		data[i] = (unsigned char)(i * 7 + i / 251);
	return data;
}

static unsigned int
count_entries(const char *dir)
{
	struct dirent *d;
	unsigned int n = 0;
	DIR *dp = opendir(dir);

	ck_assert_ptr_nonnull(dp);
	while ((d = readdir(dp)) != NULL)
		n += strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
	closedir(dp);
	return n;
}

/* Appended in pieces, read back whole, whether it stayed in memory or not. */
static void
check_roundtrip(size_t mem_limit, size_t size, size_t piece)
{
	char dir[] = "/tmp/ms-test-msgbuf.XXXXXX";
	unsigned char *data = pattern(size);
	const unsigned char *view;
	struct ms_msgbuf *buf;
	size_t off, len;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	buf = ms_msgbuf_create(mem_limit, dir);
	ck_assert_ptr_nonnull(buf);
	for (off = 0; off < size; off += len) {
		len = size - off < piece ? size - off : piece;
		ck_assert_int_eq(ms_msgbuf_append(buf, data + off, len), 0);
	}
	ck_assert_uint_eq(ms_msgbuf_size(buf), size);
	ck_assert_int_eq(ms_msgbuf_view(buf, &view, &len), 0);
	ck_assert_uint_eq(len, size);
	ck_assert(size == 0 || memcmp(view, data, size) == 0);
	/* a spilled message is an unlinked file: nothing to clean up, ever */
	ck_assert_uint_eq(count_entries(dir), 0);
	ms_msgbuf_free(&buf);
	ck_assert_ptr_null(buf);
	rmdir(dir);
	free(data);
}

START_TEST(test_small_in_memory)
{
	check_roundtrip(1024, 1000, 100);
}
END_TEST

START_TEST(test_large_spills_to_file)
{
	check_roundtrip(1024, 300 * 1024 + 17, 4096);
}
END_TEST

START_TEST(test_exactly_at_limit)
{
	check_roundtrip(4096, 4096, 4096);
	check_roundtrip(4096, 4097, 4097);
}
END_TEST

START_TEST(test_empty)
{
	check_roundtrip(1024, 0, 1);
}
END_TEST

START_TEST(test_reset_reuses)
{
	struct ms_msgbuf *buf = ms_msgbuf_create(10, NULL);
	const unsigned char *view;
	size_t len;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(ms_msgbuf_append(buf, "0123456789abcdef", 16), 0);
	ck_assert_int_eq(ms_msgbuf_view(buf, &view, &len), 0);
	ck_assert_uint_eq(len, 16);
	ms_msgbuf_reset(buf);
	ck_assert_uint_eq(ms_msgbuf_size(buf), 0);
	ck_assert_int_eq(ms_msgbuf_append(buf, "xyz", 3), 0);
	ck_assert_int_eq(ms_msgbuf_view(buf, &view, &len), 0);
	ck_assert_uint_eq(len, 3);
	ck_assert(memcmp(view, "xyz", 3) == 0);
	/* appending after a view still gives one contiguous message */
	ck_assert_int_eq(ms_msgbuf_append(buf, "0123456789", 10), 0);
	ck_assert_int_eq(ms_msgbuf_view(buf, &view, &len), 0);
	ck_assert_uint_eq(len, 13);
	ck_assert(memcmp(view, "xyz0123456789", 13) == 0);
	ms_msgbuf_free(&buf);
}
END_TEST

START_TEST(test_unusable_tmpdir)
{
	struct ms_msgbuf *buf = ms_msgbuf_create(4, "/nonexistent/dir");

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(ms_msgbuf_append(buf, "abc", 3), 0);
	ck_assert_int_eq(ms_msgbuf_append(buf, "defg", 4), -1);
	ms_msgbuf_free(&buf);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("msgbuf");
	TCase *tc = tcase_create("msgbuf");

	tcase_add_test(tc, test_small_in_memory);
	tcase_add_test(tc, test_large_spills_to_file);
	tcase_add_test(tc, test_exactly_at_limit);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_reset_reuses);
	tcase_add_test(tc, test_unusable_tmpdir);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
