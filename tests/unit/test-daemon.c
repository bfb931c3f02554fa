#include "ms-daemon.h"
#include "ms-test.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char dir[64];

static void
setup(void)
{
	ms_test_mkdtemp(dir, sizeof(dir), "daemon");
}

static void
teardown(void)
{
	ms_test_rmtree(dir);
}

static char *
in_dir(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static struct ms_daemon_user
me(void)
{
	struct ms_daemon_user du = {geteuid(), getegid(), 0};

	return du;
}

START_TEST(test_unix_socket_mode)
{
	struct ms_daemon_user owner = me();
	char err[256];
	struct stat st;
	int fd;

	fd = ms_daemon_listen_unix(in_dir("s"), 0660, &owner, err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(stat(in_dir("s"), &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	close(fd);
}
END_TEST

START_TEST(test_unix_socket_owner)
{
	struct ms_daemon_user owner;
	char err[256];
	struct stat st;
	int fd;

	if (geteuid() != 0)
		return; /* only root gives sockets away */
	ck_assert_int_eq(ms_daemon_lookup_user("65534", "65533", &owner, err, sizeof(err)), 0);
	fd = ms_daemon_listen_unix(in_dir("s"), 0600, &owner, err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(stat(in_dir("s"), &st), 0);
	ck_assert_uint_eq(st.st_uid, 65534);
	ck_assert_uint_eq(st.st_gid, 65533);
	close(fd);
	ck_assert_int_eq(ms_daemon_lookup_user("no-such-user-x", "0", &owner, err, sizeof(err)),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, "no-such-user-x"));
}
END_TEST

START_TEST(test_unix_socket_stale_and_live)
{
	struct ms_daemon_user owner = me();
	char err[256];
	int fd, fd2;

	fd = ms_daemon_listen_unix(in_dir("s"), 0666, &owner, err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	/* someone listens: never steal the socket of a running daemon */
	ck_assert_int_eq(ms_daemon_listen_unix(in_dir("s"), 0666, &owner, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "another process"));
	close(fd);
	/* nobody listens any more: a stale file from a crash is replaced */
	fd2 = ms_daemon_listen_unix(in_dir("s"), 0666, &owner, err, sizeof(err));
	ck_assert_int_ge(fd2, 0);
	close(fd2);
}
END_TEST

START_TEST(test_unix_socket_errors)
{
	struct ms_daemon_user owner = me();
	char err[256], longpath[200];

	ck_assert_int_eq(
	        ms_daemon_listen_unix("/nonexistent/dir/s", 0666, &owner, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir/s"));
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	ck_assert_int_eq(ms_daemon_listen_unix(longpath, 0666, &owner, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "too long"));
}
END_TEST

START_TEST(test_tcp)
{
	char err[256];
	int fd;

	fd = ms_daemon_listen_tcp("127.0.0.1:0", err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	close(fd);
	fd = ms_daemon_listen_tcp("[::1]:0", err, sizeof(err));
	if (fd >= 0) /* where the kernel has IPv6 */
		close(fd);
	ck_assert_int_eq(ms_daemon_listen_tcp("127.0.0.1", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "host:port"));
	ck_assert_int_eq(ms_daemon_listen_tcp("localhost:24", err, sizeof(err)), -1);
	ck_assert_int_eq(ms_daemon_listen_tcp("[::1", err, sizeof(err)), -1);
	ck_assert_int_eq(ms_daemon_listen_tcp("127.0.0.1:", err, sizeof(err)), -1);
	ck_assert_int_eq(ms_daemon_listen_tcp("127.0.0.1:http", err, sizeof(err)), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc = tcase_create("daemon");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unix_socket_mode);
	tcase_add_test(tc, test_unix_socket_owner);
	tcase_add_test(tc, test_unix_socket_stale_and_live);
	tcase_add_test(tc, test_unix_socket_errors);
	tcase_add_test(tc, test_tcp);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
