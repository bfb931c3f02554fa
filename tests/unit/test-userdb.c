#include "ms-userdb.h"
#include "ms-test.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEF_UID 5000
#define DEF_GID 5001

static char dir[] = "/tmp/ms-test-userdb.XXXXXX";
static char path[128], spec[160];

static void
write_file(const char *text)
{
	char tmp[160];
	FILE *fp;

	/* replace, as admins' tools do: a new inode and mtime */
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	ck_assert((fp = fopen(tmp, "w")) != NULL);
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(rename(tmp, path), 0);
}

static void
setup(void)
{
	ck_assert(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/users", dir);
	snprintf(spec, sizeof(spec), "passwd-file:%s", path);
}

static void
teardown(void)
{
	unlink(path);
	rmdir(dir);
	strcpy(dir, "/tmp/ms-test-userdb.XXXXXX");
}

static struct ms_userdb *
open_db(void)
{
	char err[256];
	struct ms_userdb *db = ms_userdb_create(spec, DEF_UID, DEF_GID, err, sizeof(err));

	ck_assert_msg(db != NULL, "%s", err);
	return db;
}

static enum ms_userdb_result
lookup(struct ms_userdb *db, const char *address, struct ms_user *user)
{
	char err[256];

	return ms_userdb_lookup(db, address, user, err, sizeof(err));
}

START_TEST(test_fields)
{
	struct ms_userdb *db;
	struct ms_user user;

	write_file("# users\n\n"
	           "alice@example.test:{PLAIN}secret:1234:2345::/home/alice::userdb_mail=maildir:"
	           "~/Mail userdb_quota_rule=*:storage=1G\n"
	           "bob@example.test:{SHA512-CRYPT}$6$x$y::::::\n"
	           "carol@example.test:{PLAIN}x:root:root::/srv/carol\r\n");
	db = open_db();
	ck_assert_int_eq(lookup(db, "alice@example.test", &user), MS_USERDB_FOUND);
	ck_assert_str_eq(user.name, "alice@example.test");
	ck_assert_str_eq(user.local, "alice");
	ck_assert_str_eq(user.domain, "example.test");
	ck_assert_uint_eq(user.uid, 1234);
	ck_assert_uint_eq(user.gid, 2345);
	ck_assert_str_eq(user.home, "/home/alice");
	ck_assert_str_eq(user.mail, "maildir:~/Mail");

	/* empty fields take the defaults */
	ck_assert_int_eq(lookup(db, "bob@example.test", &user), MS_USERDB_FOUND);
	ck_assert_uint_eq(user.uid, DEF_UID);
	ck_assert_uint_eq(user.gid, DEF_GID);
	ck_assert_str_eq(user.home, "");
	ck_assert_str_eq(user.mail, "");

	/* names resolve; CRLF line endings are tolerated */
	ck_assert_int_eq(lookup(db, "carol@example.test", &user), MS_USERDB_FOUND);
	ck_assert_uint_eq(user.uid, 0);
	ck_assert_str_eq(user.home, "/srv/carol");
	ms_userdb_destroy(&db);
	ck_assert(db == NULL);
}
END_TEST

START_TEST(test_detail_and_case)
{
	struct ms_userdb *db;
	struct ms_user user;

	write_file("bob@example.test:x::::::\nbob+lists@example.test:x:77::::::\n");
	db = open_db();
	ck_assert_int_eq(lookup(db, "bob+news@example.test", &user), MS_USERDB_FOUND);
	ck_assert_str_eq(user.name, "bob@example.test");
	ck_assert_uint_eq(user.uid, DEF_UID);
	/* a user literally named with a + wins over the stripped name */
	ck_assert_int_eq(lookup(db, "bob+lists@example.test", &user), MS_USERDB_FOUND);
	ck_assert_uint_eq(user.uid, 77);
	ck_assert_int_eq(lookup(db, "BOB@Example.TEST", &user), MS_USERDB_FOUND);
	ck_assert_str_eq(user.name, "bob@example.test");
	ck_assert_int_eq(lookup(db, "+x@example.test", &user), MS_USERDB_NOUSER);
	ck_assert_int_eq(lookup(db, "bob@other.test", &user), MS_USERDB_NOUSER);
	ck_assert_int_eq(lookup(db, "bob", &user), MS_USERDB_NOUSER);
	ms_userdb_destroy(&db);
}
END_TEST

START_TEST(test_bogus_lines)
{
	struct ms_userdb *db;
	struct ms_user user;
	char err[256];

	write_file(":nobody::::\n"
	           "no-colons-at-all\n"
	           "bad@example.test:x:no-such-user-here::::\n"
	           "badgid@example.test:x:1:no-such-group-here:::\n"
	           "relhome@example.test:x:::: relative/home::\n"
	           "ok@example.test:x::::::\n"
	           "../x@example.test:x::::::\n"
	           "dup@example.test:x:11:::::\n"
	           "dup@example.test:x:22:::::\n");
	db = open_db();
	ck_assert_int_eq(lookup(db, "ok@example.test", &user), MS_USERDB_FOUND);
	/* a user whose line is broken is a temporary failure, never a bounce */
	ck_assert_int_eq(ms_userdb_lookup(db, "bad@example.test", &user, err, sizeof(err)),
	                 MS_USERDB_TEMPFAIL);
	ck_assert_msg(strstr(err, ":3: unknown uid") != NULL, "%s", err);
	ck_assert_int_eq(lookup(db, "badgid@example.test", &user), MS_USERDB_TEMPFAIL);
	ck_assert_int_eq(lookup(db, "relhome@example.test", &user), MS_USERDB_TEMPFAIL);
	ck_assert_int_eq(lookup(db, "no-colons-at-all", &user), MS_USERDB_NOUSER);
	/* a name that is no safe path is nobody, even if the file has it */
	ck_assert_int_eq(lookup(db, "../x@example.test", &user), MS_USERDB_NOUSER);
	ck_assert_int_eq(lookup(db, "dup@example.test", &user), MS_USERDB_FOUND);
	ck_assert_uint_eq(user.uid, 11);
	ms_userdb_destroy(&db);
}
END_TEST

START_TEST(test_missing_file)
{
	struct ms_userdb *db;
	struct ms_user user;
	char err[256];

	db = open_db(); /* no file yet: creating works, lookups fail temporarily */
	ck_assert_int_eq(ms_userdb_lookup(db, "ok@example.test", &user, err, sizeof(err)),
	                 MS_USERDB_TEMPFAIL);
	ck_assert_msg(strstr(err, "No such file") != NULL, "%s", err);
	write_file("ok@example.test:x::::::\n");
	ck_assert_int_eq(lookup(db, "ok@example.test", &user), MS_USERDB_FOUND);
	/* unreadable: a directory where the file was */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(lookup(db, "ok@example.test", &user), MS_USERDB_TEMPFAIL);
	ck_assert_int_eq(rmdir(path), 0);
	ms_userdb_destroy(&db);
}
END_TEST

START_TEST(test_reload)
{
	struct ms_userdb *db;
	struct ms_user user;

	write_file("a@example.test:x::::::\n");
	db = open_db();
	ck_assert_int_eq(lookup(db, "new@example.test", &user), MS_USERDB_NOUSER);
	write_file("a@example.test:x::::::\nnew@example.test:x:42:::::\n");
	ck_assert_int_eq(lookup(db, "new@example.test", &user), MS_USERDB_FOUND);
	ck_assert_uint_eq(user.uid, 42);
	write_file("new@example.test:x:43:::::\n");
	ck_assert_int_eq(lookup(db, "a@example.test", &user), MS_USERDB_NOUSER);
	ck_assert_int_eq(lookup(db, "new@example.test", &user), MS_USERDB_FOUND);
	ck_assert_uint_eq(user.uid, 43);
	ms_userdb_destroy(&db);
}
END_TEST

START_TEST(test_bad_spec)
{
	char err[256];

	ck_assert(ms_userdb_create("ldap:/etc/x", 1, 1, err, sizeof(err)) == NULL);
	ck_assert(strstr(err, "passwd-file") != NULL);
	ck_assert(ms_userdb_create("passwd-file:relative", 1, 1, err, sizeof(err)) == NULL);
}
END_TEST

START_TEST(test_parse_line)
{
	struct ms_userdb_line line;
	const char *problem;
	char buf[128];

	strcpy(buf, "u@d:p:1:2:gecos:/h:/bin/sh:userdb_mail=maildir:/m:INDEX=/i other=1");
	ck_assert_int_eq(ms_userdb_parse_line(buf, &line, &problem), 1);
	ck_assert_str_eq(line.name, "u@d");
	ck_assert_str_eq(line.uid, "1");
	ck_assert_str_eq(line.gid, "2");
	ck_assert_str_eq(line.home, "/h");
	ck_assert_str_eq(line.mail, "maildir:/m:INDEX=/i");
	strcpy(buf, "u@d");
	ck_assert_int_eq(ms_userdb_parse_line(buf, &line, &problem), 1);
	ck_assert_str_eq(line.uid, "");
	ck_assert_str_eq(line.home, "");
	strcpy(buf, "# comment");
	ck_assert_int_eq(ms_userdb_parse_line(buf, &line, &problem), 0);
	strcpy(buf, ":x");
	ck_assert_int_eq(ms_userdb_parse_line(buf, &line, &problem), -1);
	ck_assert_str_eq(problem, "empty user name");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("userdb");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_detail_and_case);
	tcase_add_test(tc, test_bogus_lines);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_bad_spec);
	tcase_add_test(tc, test_parse_line);
	suite_add_tcase(s, tc);
	return ms_test_run(s);
}
