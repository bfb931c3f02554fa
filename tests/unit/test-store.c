/* The token store against a real, private redis-server on a unix socket in
 * a temp dir (skipped with 77 when redis-server is not installed). */
#include "ms-config.h"
#include "ms-filter.h"
#include "ms-resp.h"
#include "ms-store.h"

#include <check.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/ms-test-store.XXXXXX";
static char sock_path[100];
static pid_t redis_pid = -1;

static int
can_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), ok;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void
redis_start(void)
{
	int i;

	redis_pid = fork();
	ck_assert_int_ge(redis_pid, 0);
	if (redis_pid == 0) {
		execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock_path,
		       "--save", "", "--appendonly", "no", "--dir", tmpdir, "--logfile",
		       "redis.log", (char *)NULL);
		_exit(127);
	}
	/* wait for the socket: startup, not a timing assertion */
	for (i = 0; i < 500 && !can_connect(sock_path); i++)
		usleep(10000);
	ck_assert_msg(can_connect(sock_path), "redis-server did not start");
}

static void
redis_stop(void)
{
	if (redis_pid > 0) {
		kill(redis_pid, SIGCONT);
		kill(redis_pid, SIGTERM);
		waitpid(redis_pid, NULL, 0);
	}
	redis_pid = -1;
	unlink(sock_path);
}

/* a small table: the tests sweep all of it */
#define TEST_TABLE_BITS 12
#define TEST_SLOTS      (1u << TEST_TABLE_BITS)
/* Generous, so a loaded machine never fails a test; the hung-Redis test
 * asks for a short one. */
#define STORE_TIMEOUT_MSECS 5000

static struct ms_store *
store_new_timeout(unsigned int timeout_msecs)
{
	struct ms_store *store =
	        ms_store_create(sock_path, NULL, "mt", TEST_TABLE_BITS, timeout_msecs);

	ck_assert_ptr_nonnull(store);
	return store;
}

static struct ms_store *
store_new(void)
{
	return store_new_timeout(STORE_TIMEOUT_MSECS);
}

static void
setup(void)
{
	redis_start();
}

static void
teardown(void)
{
	redis_stop();
}

static void
digest_of(const char *name, unsigned char digest[MS_DIGEST_SIZE])
{
	memset(digest, 0, MS_DIGEST_SIZE);
	snprintf((char *)digest, MS_DIGEST_SIZE, "%s", name);
}

static enum ms_learn_result
learn(struct ms_store *store, const char *user, enum ms_class cls, const char *name,
      const uint64_t *hashes, size_t count)
{
	unsigned char digest[MS_DIGEST_SIZE];
	enum ms_learn_result result;
	char err[256];

	digest_of(name, digest);
	ck_assert_msg(ms_store_learn(store, user, cls, digest, hashes, count, &result, err,
	                             sizeof(err)) == 0,
	              "learn: %s", err);
	return result;
}

static void
fetch(struct ms_store *store, const char *user, const uint64_t *hashes, size_t count,
      struct ms_token_counts *counts, struct ms_store_totals *totals)
{
	char err[256];

	ck_assert_msg(
	        ms_store_fetch(store, user, hashes, count, counts, totals, err, sizeof(err)) == 0,
	        "fetch: %s", err);
}

/* tokens in slots 0x010, 0x123, 0x567 and 0xfff of the 2^12 table */
static const uint64_t msg_a[] = {0x0100000000000005ULL, 0x1234000000000001ULL,
                                 0x5678abcd00000000ULL};
static const uint64_t msg_b[] = {0x5678abcd00000000ULL, 0xfffe000012340000ULL};
static const uint64_t all[] = {0x0100000000000005ULL, 0x1234000000000001ULL, 0x5678abcd00000000ULL,
                               0xfffe000012340000ULL};

START_TEST(test_learn_relearn)
{
	struct ms_store *store = store_new();
	struct ms_token_counts counts[4];
	struct ms_store_totals totals;

	fetch(store, NULL, all, 4, counts, &totals);
	ck_assert_uint_eq(totals.learned_spam + totals.learned_ham, 0);
	ck_assert_uint_eq(counts[0].spam + counts[0].ham, 0);

	ck_assert_int_eq(learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3), MS_LEARN_DONE);
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3), MS_LEARN_ALREADY);
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_HAM, "b", msg_b, 2), MS_LEARN_DONE);
	fetch(store, NULL, all, 4, counts, &totals);
	ck_assert_uint_eq(totals.learned_spam, 1);
	ck_assert_uint_eq(totals.learned_ham, 1);
	ck_assert_uint_eq(totals.tokens, 4);
	ck_assert_uint_eq(counts[0].spam, 1);
	ck_assert_uint_eq(counts[0].ham, 0);
	ck_assert_uint_eq(counts[1].spam, 1);
	ck_assert_uint_eq(counts[2].spam, 1);
	ck_assert_uint_eq(counts[2].ham, 1);
	ck_assert_uint_eq(counts[3].spam, 0);
	ck_assert_uint_eq(counts[3].ham, 1);

	/* moved out of Junk: unlearned as spam, learned as ham */
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_HAM, "a", msg_a, 3), MS_LEARN_MOVED);
	fetch(store, NULL, all, 4, counts, &totals);
	ck_assert_uint_eq(totals.learned_spam, 0);
	ck_assert_uint_eq(totals.learned_ham, 2);
	ck_assert_uint_eq(counts[0].spam, 0);
	ck_assert_uint_eq(counts[0].ham, 1);
	ck_assert_uint_eq(counts[2].spam, 0);
	ck_assert_uint_eq(counts[2].ham, 2);
	ck_assert_uint_eq(totals.tokens, 4);

	/* and back: the ham counts go down again, a token at 0/0 is gone */
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_SPAM, "b", msg_b, 2), MS_LEARN_MOVED);
	fetch(store, NULL, all, 4, counts, &totals);
	ck_assert_uint_eq(totals.learned_spam, 1);
	ck_assert_uint_eq(totals.learned_ham, 1);
	ck_assert_uint_eq(counts[2].spam, 1);
	ck_assert_uint_eq(counts[2].ham, 1);
	ck_assert_uint_eq(counts[3].spam, 1);
	ck_assert_uint_eq(counts[3].ham, 0);
	ms_store_destroy(&store);
}
END_TEST

START_TEST(test_per_user)
{
	struct ms_store *store = store_new();
	struct ms_token_counts counts[4];
	struct ms_store_totals totals;

	ck_assert_int_eq(learn(store, "alice@example.test", MS_CLASS_SPAM, "a", msg_a, 3),
	                 MS_LEARN_DONE);
	/* the same message for another user is that user's own first learn */
	ck_assert_int_eq(learn(store, "b}{ob@example.test", MS_CLASS_HAM, "a", msg_a, 3),
	                 MS_LEARN_DONE);
	fetch(store, "alice@example.test", all, 4, counts, &totals);
	ck_assert_uint_eq(totals.learned_spam, 1);
	ck_assert_uint_eq(totals.learned_ham, 0);
	ck_assert_uint_eq(counts[1].spam, 1);
	ck_assert_uint_eq(counts[1].ham, 0);
	fetch(store, "b}{ob@example.test", all, 4, counts, &totals);
	ck_assert_uint_eq(totals.learned_spam, 0);
	ck_assert_uint_eq(totals.learned_ham, 1);
	ck_assert_uint_eq(counts[1].spam, 0);
	ck_assert_uint_eq(counts[1].ham, 1);
	fetch(store, NULL, all, 4, counts, &totals);
	ck_assert_uint_eq(totals.learned_spam + totals.learned_ham, 0);
	ck_assert_uint_eq(counts[1].spam + counts[1].ham, 0);
	ms_store_destroy(&store);
}
END_TEST

static void
expire_all(struct ms_store *store, unsigned long long *removed_r)
{
	char err[256];

	ck_assert_msg(ms_store_expire(store, NULL, TEST_SLOTS, removed_r, err, sizeof(err)) == 0,
	              "expire: %s", err);
}

START_TEST(test_expiry)
{
	struct ms_store *store = store_new();
	struct ms_token_counts counts[4];
	struct ms_store_totals totals;
	unsigned long long removed;

	learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3);
	learn(store, NULL, MS_CLASS_HAM, "b", msg_b, 2);
	/* first pass: everything was learned since, only marks are cleared */
	expire_all(store, &removed);
	ck_assert_uint_eq(removed, 0);
	/* learning touches msg_b's tokens again: they are not stale */
	learn(store, NULL, MS_CLASS_HAM, "b2", msg_b, 2);
	expire_all(store, &removed);
	/* msg_a's two own tokens were seen once and not since: gone */
	ck_assert_uint_eq(removed, 2);
	fetch(store, NULL, all, 4, counts, &totals);
	ck_assert_uint_eq(counts[0].spam + counts[0].ham, 0);
	ck_assert_uint_eq(counts[1].spam + counts[1].ham, 0);
	ck_assert_uint_eq(counts[2].spam, 1);
	ck_assert_uint_eq(counts[2].ham, 2);
	ck_assert_uint_eq(counts[3].ham, 2);
	ck_assert_uint_eq(totals.tokens, 2);
	/* the learn counters are the messages', not the tokens' */
	ck_assert_uint_eq(totals.learned_spam, 1);
	ck_assert_uint_eq(totals.learned_ham, 2);
	/* a third pass keeps tokens seen more than once, stale or not */
	expire_all(store, &removed);
	ck_assert_uint_eq(removed, 0);
	ms_store_destroy(&store);
}
END_TEST

/* The sweep runs after each learn; a SCRIPT FLUSH costs one learn's sweep,
 * the next learn loads the script again. */
START_TEST(test_sweep_after_script_flush)
{
	struct ms_store *store = store_new();
	struct ms_token_counts counts[4];
	struct ms_store_totals totals;
	redisContext *admin = redisConnectUnix(sock_path);
	redisReply *reply;

	ck_assert(admin != NULL && admin->err == 0);
	learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3);
	reply = redisCommand(admin, "SCRIPT FLUSH");
	ck_assert_ptr_nonnull(reply);
	freeReplyObject(reply);
	learn(store, NULL, MS_CLASS_SPAM, "b", msg_b, 2);
	learn(store, NULL, MS_CLASS_HAM, "c", msg_a, 3);
	/* a reply on the store's connection: its sweep has run by then */
	fetch(store, NULL, all, 4, counts, &totals);
	reply = redisCommand(admin, "HGET mt{g}:m cursor");
	ck_assert(reply != NULL && reply->type == REDIS_REPLY_STRING);
	/* one slot per learn at 2^12 slots: a's and c's sweeps, not b's */
	ck_assert_str_eq(reply->str, "2");
	freeReplyObject(reply);
	redisFree(admin);
	ms_store_destroy(&store);
}
END_TEST

/* What Redis itself says: INFO field name (e.g. "cmdstat_eval:") present? */
static bool
redis_info_has(const char *section, const char *field)
{
	redisContext *c = redisConnectUnix(sock_path);
	redisReply *reply;
	bool found;

	ck_assert_msg(c != NULL && c->err == 0, "connect to redis");
	reply = redisCommand(c, "INFO %s", section);
	ck_assert_msg(reply != NULL && reply->type == REDIS_REPLY_STRING, "INFO %s", section);
	found = strstr(reply->str, field) != NULL;
	freeReplyObject(reply);
	redisFree(c);
	return found;
}

static void
redis_script_flush(void)
{
	redisContext *c = redisConnectUnix(sock_path);
	redisReply *reply;

	ck_assert_msg(c != NULL && c->err == 0, "connect to redis");
	reply = redisCommand(c, "SCRIPT FLUSH");
	ck_assert_msg(reply != NULL && reply->type == REDIS_REPLY_STATUS, "SCRIPT FLUSH");
	freeReplyObject(reply);
	redisFree(c);
}

/* The sweep script is named by the SHA-1 Redis returns from SCRIPT LOAD
 * (mailsift does not hash it): a store that sweeps before it ever learned
 * runs it by EVALSHA without a NOSCRIPT round, and after SCRIPT FLUSH the
 * sweep and learning still work. */
START_TEST(test_expiry_script_name)
{
	struct ms_store *store = store_new();
	unsigned long long removed;

	expire_all(store, &removed);
	ms_store_destroy(&store);
	store = store_new();
	learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3);
	ms_store_destroy(&store);
	store = store_new();
	expire_all(store, &removed);
	ck_assert_uint_eq(removed, 0);
	ck_assert(redis_info_has("commandstats", "cmdstat_evalsha:"));
	ck_assert(!redis_info_has("commandstats", "cmdstat_eval:"));
	ck_assert(!redis_info_has("errorstats", "errorstat_NOSCRIPT:"));

	redis_script_flush();
	expire_all(store, &removed);
	ck_assert_uint_eq(removed, 3); /* msg_a's tokens, seen once, not since */
	ck_assert(redis_info_has("commandstats", "cmdstat_eval:"));
	redis_script_flush();
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_HAM, "b", msg_b, 2), MS_LEARN_DONE);
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_HAM, "b2", msg_b, 2), MS_LEARN_DONE);
	ms_store_destroy(&store);
}
END_TEST

/* Two tokens whose hashes share their top bits share a slot: that is the
 * table's precision, and the counts add up. */
START_TEST(test_shared_slot)
{
	static const uint64_t near[] = {0x1230000000000000ULL, 0x123fffffffffffffULL};
	struct ms_store *store = store_new();
	struct ms_token_counts counts[2];
	struct ms_store_totals totals;

	learn(store, NULL, MS_CLASS_SPAM, "n", near, 1);
	fetch(store, NULL, near, 2, counts, &totals);
	ck_assert_uint_eq(counts[0].spam, 1);
	ck_assert_uint_eq(counts[1].spam, 1);
	/* both in one message: the slot holds two sightings, one token is new */
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_HAM, "nn", near, 2), MS_LEARN_DONE);
	fetch(store, NULL, near, 2, counts, &totals);
	ck_assert_uint_eq(counts[0].ham, 2);
	ck_assert_uint_eq(totals.tokens, 1);
	/* a message without tokens is still learned, once */
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_HAM, "empty", NULL, 0), MS_LEARN_DONE);
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_HAM, "empty", NULL, 0), MS_LEARN_ALREADY);
	ms_store_destroy(&store);
}
END_TEST

/* Write slot's 40 bits as another learner, or expiry, would have left them. */
static void
set_slot(unsigned int slot, unsigned long long value)
{
	redisContext *admin = redisConnectUnix(sock_path);
	redisReply *reply;

	ck_assert(admin != NULL && admin->err == 0);
	reply = redisCommand(admin, "BITFIELD mt{g}:t SET u40 #%u %llu", slot, value);
	ck_assert(reply != NULL && reply->type == REDIS_REPLY_ARRAY);
	freeReplyObject(reply);
	redisFree(admin);
}

/* The counts of msg_a's first two tokens, as expected. */
static void
assert_msg_a(struct ms_store *store, uint32_t spam0, uint32_t ham0, uint32_t spam1, uint32_t ham1)
{
	struct ms_token_counts counts[3];
	struct ms_store_totals totals;

	fetch(store, NULL, msg_a, 3, counts, &totals);
	ck_assert_uint_eq(counts[0].spam, spam0);
	ck_assert_uint_eq(counts[0].ham, ham0);
	ck_assert_uint_eq(counts[1].spam, spam1);
	ck_assert_uint_eq(counts[1].ham, ham1);
}

/* A message moved out of Junk long after it was learned: expiry emptied a
 * slot of its tokens, and a ham token took the slot since. The unlearn of
 * the spam sighting must stop at zero, not borrow from the ham count. */
START_TEST(test_unlearn_emptied_slot)
{
	struct ms_store *store = store_new();

	learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3);
	/* msg_a[0]'s slot, 0x010: now ham 1, spam 0, unmarked */
	set_slot(0x010, 1ULL << 20);
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_HAM, "a", msg_a, 3), MS_LEARN_MOVED);
	assert_msg_a(store, 0, 2, 0, 1);
	/* and the other way: a slot that lost its ham sighting */
	set_slot(0x010, 2);
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3), MS_LEARN_MOVED);
	assert_msg_a(store, 2, 0, 1, 0);
	ms_store_destroy(&store);
}
END_TEST

/* A count near its maximum: an INCRBY of the whole slot past it would
 * carry into the next field, so the learn halves the slot's counts. */
START_TEST(test_learn_halves_full_slot)
{
	struct ms_store *store = store_new();

	learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3);
	/* msg_a[0]'s slot: 524,286 spam (one under the maximum), 1,001 ham */
	set_slot(0x010, (1001ULL << 20) | (524286ULL << 1));
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_SPAM, "b", msg_a, 3), MS_LEARN_DONE);
	assert_msg_a(store, 524287 / 2, 1001 / 2, 2, 0);
	/* and a ham count one under its maximum */
	set_slot(0x010, (1048574ULL << 20) | (7ULL << 1));
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_HAM, "c", msg_a, 3), MS_LEARN_DONE);
	assert_msg_a(store, 3, 1048575 / 2, 2, 1);
	ms_store_destroy(&store);
}
END_TEST

/* The table's size is fixed by the first learn: a reader configured with
 * another size would read the wrong slots, so it gets an error instead. */
START_TEST(test_table_size_mismatch)
{
	struct ms_store *store = store_new(), *other;
	struct ms_token_counts counts[4];
	struct ms_store_totals totals;
	char err[256];

	learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3);
	other = ms_store_create(sock_path, NULL, "mt", TEST_TABLE_BITS + 1, STORE_TIMEOUT_MSECS);
	ck_assert_int_eq(ms_store_fetch(other, NULL, all, 4, counts, &totals, err, sizeof(err)),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, "token_table_bits"));
	/* and the connection is still usable afterwards */
	fetch(store, NULL, all, 4, counts, &totals);
	ms_store_destroy(&other);
	ms_store_destroy(&store);
}
END_TEST

START_TEST(test_stats)
{
	struct ms_store *store = store_new();
	struct ms_store_totals totals;
	unsigned long long memory = 0;
	char err[256];

	learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3);
	ck_assert_int_eq(ms_store_stats(store, NULL, &totals, &memory, err, sizeof(err)), 0);
	ck_assert_uint_eq(totals.learned_spam, 1);
	ck_assert_uint_eq(totals.tokens, 3);
	ck_assert_uint_gt(memory, 0);
	ms_store_destroy(&store);
}
END_TEST

/* A hung Redis (SIGSTOP) costs one timeout, a dead one fails at once; both
 * are errors, never a hang, and the store reconnects once Redis is back. */
START_TEST(test_redis_trouble)
{
	struct ms_store *store = store_new_timeout(1000);
	struct ms_token_counts counts[4];
	struct ms_store_totals totals;
	enum ms_learn_result result;
	unsigned char digest[MS_DIGEST_SIZE];
	char err[256];

	fetch(store, NULL, all, 4, counts, &totals);
	kill(redis_pid, SIGSTOP);
	ck_assert_int_eq(ms_store_fetch(store, NULL, all, 4, counts, &totals, err, sizeof(err)),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, sock_path));
	kill(redis_pid, SIGCONT);
	fetch(store, NULL, all, 4, counts, &totals);

	redis_stop();
	digest_of("a", digest);
	ck_assert_int_eq(ms_store_learn(store, NULL, MS_CLASS_SPAM, digest, msg_a, 3, &result, err,
	                                sizeof(err)),
	                 -1);
	ck_assert_int_eq(ms_store_fetch(store, NULL, all, 4, counts, &totals, err, sizeof(err)),
	                 -1);
	redis_start();
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3), MS_LEARN_DONE);
	ms_store_destroy(&store);
}
END_TEST

/* --- the facade: tokenizer + store + classifier ------------------------ */

static void
filter_config(struct ms_config *cfg)
{
	char line[200];
	char err[256];

	ms_config_init(cfg);
	snprintf(line, sizeof(line), "redis = unix:%s", sock_path);
	ck_assert_int_eq(ms_config_parse_line(cfg, line, "test", 1, err, sizeof(err)), 0);
	ck_assert_int_eq(
	        ms_config_parse_line(cfg, "token_table_bits = 16", "test", 2, err, sizeof(err)), 0);
}

static const char *const spam_words[] = {"viagra",  "winner", "casino",    "lottery", "pills",
                                         "bitcoin", "prize",  "unclaimed", "offshore"};
static const char *const ham_words[] = {"meeting", "patch", "review",  "kernel", "agenda",
                                        "minutes", "build", "release", "lunch"};

/* A message of five words out of one class's vocabulary, different for each
 * n, so that every learned message has its own digest. */
static size_t
make_message(char *buf, size_t size, bool spam, unsigned int n)
{
	const char *const *words = spam ? spam_words : ham_words;
	int len = snprintf(buf, size,
	                   "From: %s@example.test\nSubject: %s %s\n\n%s %s %s message %u\n",
	                   spam ? "promo" : "colleague", words[n % 9], words[(n + 1) % 9],
	                   words[(n + 2) % 9], words[(n + 4) % 9], words[(n + 7) % 9], n);

	ck_assert(len > 0 && (size_t)len < size);
	return (size_t)len;
}

static void
filter_learn(struct ms_filter *filter, bool spam, unsigned int n, enum ms_learn_result *result)
{
	char msg[512], err[256];
	size_t len = make_message(msg, sizeof(msg), spam, n);

	ck_assert_msg(ms_filter_learn(filter, NULL, spam ? MS_CLASS_SPAM : MS_CLASS_HAM,
	                              (const unsigned char *)msg, len, result, err,
	                              sizeof(err)) == 0,
	              "learn: %s", err);
}

START_TEST(test_filter_verdicts)
{
	struct ms_config cfg;
	struct ms_filter *filter;
	struct ms_verdict verdict;
	struct ms_filter_stats stats;
	enum ms_learn_result result;
	char msg[512], err[256];
	size_t len;
	unsigned int i;

	filter_config(&cfg);
	filter = ms_filter_create(&cfg);
	ck_assert_ptr_nonnull(filter);
	len = make_message(msg, sizeof(msg), true, 1000);
	ms_filter_classify(filter, NULL, (const unsigned char *)msg, len, &verdict);
	ck_assert_int_eq(verdict.status, MS_VERDICT_UNKNOWN);
	ck_assert_str_eq(verdict.reason, "not enough training");
	ck_assert(!verdict.spam);

	for (i = 0; i < 20; i++) {
		filter_learn(filter, true, i, &result);
		ck_assert_int_eq(result, MS_LEARN_DONE);
		filter_learn(filter, false, i, &result);
	}
	filter_learn(filter, true, 3, &result);
	ck_assert_int_eq(result, MS_LEARN_ALREADY);
	ck_assert_int_eq(ms_filter_stats(filter, NULL, &stats, err, sizeof(err)), 0);
	ck_assert_uint_eq(stats.learned_spam, 20);
	ck_assert_uint_eq(stats.learned_ham, 20);
	ck_assert_uint_gt(stats.tokens, 0);
	ck_assert_uint_eq(stats.table_slots, 1ULL << cfg.token_table_bits);

	ms_filter_classify(filter, NULL, (const unsigned char *)msg, len, &verdict);
	ck_assert_int_eq(verdict.status, MS_VERDICT_OK);
	/* header and body are scored apart and averaged (doc/classifier.md);
	 * each part of this short message is a handful of tokens, under
	 * tokens_per_dof one observation, so neither part is extreme (0.81
	 * and 0.20 here) */
	ck_assert_msg(verdict.spam && verdict.score > 0.75, "spam scored %f", verdict.score);
	ck_assert_uint_gt(verdict.ntokens, 0);
	len = make_message(msg, sizeof(msg), false, 1000);
	ms_filter_classify(filter, NULL, (const unsigned char *)msg, len, &verdict);
	ck_assert_int_eq(verdict.status, MS_VERDICT_OK);
	ck_assert_msg(!verdict.spam && verdict.score < 0.25, "ham scored %f", verdict.score);

	/* Redis gone: a verdict that says so, not a failure */
	redis_stop();
	ms_filter_classify(filter, NULL, (const unsigned char *)msg, len, &verdict);
	ck_assert_int_eq(verdict.status, MS_VERDICT_UNKNOWN);
	ck_assert_str_eq(verdict.reason, "redis unavailable");
	ck_assert_int_eq(ms_filter_learn(filter, NULL, MS_CLASS_HAM, (const unsigned char *)msg,
	                                 len, &result, err, sizeof(err)),
	                 -1);
	ms_filter_destroy(&filter);
	ms_config_free(&cfg);
}
END_TEST

/* Pipelined classification gives what one by one gives, message by message,
 * also when Redis goes away in the middle of a batch. */
START_TEST(test_filter_classify_many)
{
	enum { N = 7 };
	struct ms_config cfg;
	struct ms_filter *filter;
	struct ms_filter_message msgs[N];
	struct ms_verdict one, many[N];
	enum ms_learn_result result;
	char bufs[N][512];
	unsigned int i;

	filter_config(&cfg);
	filter = ms_filter_create(&cfg);
	ck_assert_ptr_nonnull(filter);
	for (i = 0; i < 20; i++) {
		filter_learn(filter, true, i, &result);
		filter_learn(filter, false, i, &result);
	}
	for (i = 0; i < N; i++) {
		msgs[i].size = make_message(bufs[i], sizeof(bufs[i]), i % 2 == 0, 2000 + i);
		msgs[i].data = (const unsigned char *)bufs[i];
	}
	/* an empty message among them: few tokens, still a verdict */
	msgs[3].size = 0;
	ms_filter_classify_many(filter, NULL, msgs, N, many);
	for (i = 0; i < N; i++) {
		ms_filter_classify(filter, NULL, msgs[i].data, msgs[i].size, &one);
		ck_assert_int_eq(many[i].status, MS_VERDICT_OK);
		ck_assert_int_eq(one.status, MS_VERDICT_OK);
		ck_assert_msg(many[i].score == one.score, "message %u: %f pipelined, %f alone", i,
		              many[i].score, one.score);
		ck_assert_int_eq(many[i].spam, one.spam);
		ck_assert_uint_eq(many[i].ntokens, one.ntokens);
	}
	ck_assert(many[0].spam && !many[1].spam);

	redis_stop();
	ms_filter_classify_many(filter, NULL, msgs, N, many);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(many[i].status, MS_VERDICT_UNKNOWN);
		ck_assert_str_eq(many[i].reason, "redis unavailable");
	}
	ms_filter_destroy(&filter);
	ms_config_free(&cfg);
}
END_TEST

/* Pipelined learning gives what one by one gives: the same results per
 * message (a repeat in the batch is ALREADY, a message of the other class
 * MOVED), the same counters and token counts, the same scores after. The
 * two runs use two prefixes of one Redis. */
START_TEST(test_filter_learn_many)
{
	enum { N = 16, MOVED = 4 };
	static const unsigned int spam_ids[N] = {0, 1, 2, 3,  4,  5,  6,  7,
	                                         8, 9, 3, 10, 11, 12, 13, 14};
	static const unsigned int ham_ids[N] = {0, 1, 2, 3,  4,  5,  6,  7,
	                                        8, 9, 9, 11, 12, 13, 14, 15};
	struct ms_config cfg_one, cfg_many;
	struct ms_filter *one, *many;
	struct ms_filter_message msgs[N];
	struct ms_learn_outcome outcomes[N];
	struct ms_filter_stats st_one, st_many;
	struct ms_verdict v_one, v_many;
	enum ms_learn_result result;
	char bufs[N][512], err[256];
	unsigned int i, n, pass;

	filter_config(&cfg_one);
	filter_config(&cfg_many);
	ck_assert_int_eq(
	        ms_config_parse_line(&cfg_many, "redis_prefix = many", "test", 3, err, sizeof(err)),
	        0);
	one = ms_filter_create(&cfg_one);
	many = ms_filter_create(&cfg_many);
	ck_assert_ptr_nonnull(one);
	ck_assert_ptr_nonnull(many);
	for (pass = 0; pass < 3; pass++) {
		/* spam, ham, then the first spam messages again as ham: they move */
		bool spam = pass == 0;
		const unsigned int *ids = pass == 1 ? ham_ids : spam_ids;

		n = pass == 2 ? MOVED : N;
		for (i = 0; i < n; i++) {
			msgs[i].size = make_message(bufs[i], sizeof(bufs[i]), pass != 1, ids[i]);
			msgs[i].data = (const unsigned char *)bufs[i];
		}
		ms_filter_learn_many(many, NULL, spam ? MS_CLASS_SPAM : MS_CLASS_HAM, msgs, n,
		                     outcomes);
		for (i = 0; i < n; i++) {
			ck_assert_msg(ms_filter_learn(one, NULL,
			                              spam ? MS_CLASS_SPAM : MS_CLASS_HAM,
			                              msgs[i].data, msgs[i].size, &result, err,
			                              sizeof(err)) == 0,
			              "learn: %s", err);
			ck_assert_msg(outcomes[i].status == 0, "message %u: %s", i,
			              outcomes[i].err);
			ck_assert_int_eq(outcomes[i].result, result);
		}
		if (pass < 2)
			ck_assert_int_eq(outcomes[10].result, MS_LEARN_ALREADY);
		ck_assert_int_eq(outcomes[0].result, pass == 2 ? MS_LEARN_MOVED : MS_LEARN_DONE);
	}
	ck_assert_int_eq(ms_filter_stats(one, NULL, &st_one, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_filter_stats(many, NULL, &st_many, err, sizeof(err)), 0);
	ck_assert_uint_eq(st_many.learned_spam, st_one.learned_spam);
	ck_assert_uint_eq(st_many.learned_ham, st_one.learned_ham);
	ck_assert_uint_eq(st_many.tokens, st_one.tokens);
	ck_assert_uint_eq(st_many.learned_spam, 15 - MOVED);
	ck_assert_uint_eq(st_many.learned_ham, 15 + MOVED);
	for (i = 0; i < 2; i++) {
		size_t len = make_message(bufs[0], sizeof(bufs[0]), i == 0, 3000);

		ms_filter_classify(one, NULL, (const unsigned char *)bufs[0], len, &v_one);
		ms_filter_classify(many, NULL, (const unsigned char *)bufs[0], len, &v_many);
		ck_assert_int_eq(v_many.status, MS_VERDICT_OK);
		ck_assert(v_one.score == v_many.score);
	}

	redis_stop();
	ms_filter_learn_many(many, NULL, MS_CLASS_SPAM, msgs, N, outcomes);
	for (i = 0; i < N; i++)
		ck_assert_int_eq(outcomes[i].status, -1);
	ck_assert_ptr_nonnull(strstr(outcomes[N - 1].err, sock_path));
	ms_filter_destroy(&one);
	ms_filter_destroy(&many);
	ms_config_free(&cfg_one);
	ms_config_free(&cfg_many);
}
END_TEST

/* Test messages for the batch: tokens drawn from a small vocabulary, so
 * that messages share slots and some of a message's tokens share one
 * (distinct hashes, same top bits). Slots stay clear of the first 64, which
 * the sweeps of these few learns visit: there a batch's marks can differ
 * from one-by-one learning's (doc/redis-schema.md, "Learn"). */
#define BATCH_MSGS   10
#define BATCH_TOKENS 60

static uint64_t batch_hashes[BATCH_MSGS][BATCH_TOKENS];

static void
batch_messages(void)
{
	uint32_t x = 12345;
	size_t m, k;

	for (m = 0; m < BATCH_MSGS; m++) {
		for (k = 0; k < BATCH_TOKENS; k++) {
			uint64_t word = (x = x * 1103515245u + 12345u) >> 16;
			uint64_t slot = 64 + (word % 150);

			batch_hashes[m][k] = slot << (64 - TEST_TABLE_BITS) | (word % 3);
		}
	}
}

/* Learn the messages ids[] as cls one by one (store "mt") and as one
 * batch (store "mb"); the results must be the same. */
static void
learn_both(struct ms_store *one, struct ms_store *batch, enum ms_class cls, const unsigned int *ids,
           size_t n, const enum ms_learn_result *expect)
{
	struct ms_store_learn_msg msgs[BATCH_MSGS * 2];
	unsigned char digests[BATCH_MSGS * 2][MS_DIGEST_SIZE];
	char name[16], err[256];
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "m%u", ids[i]);
		digest_of(name, digests[i]);
		msgs[i].digest = digests[i];
		msgs[i].hashes = batch_hashes[ids[i]];
		msgs[i].count = BATCH_TOKENS;
	}
	ck_assert_msg(
	        ms_store_learn_batch(batch, NULL, cls, msgs, n, NULL, NULL, err, sizeof(err)) == 0,
	        "batch: %s", err);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "m%u", ids[i]);
		ck_assert_int_eq(learn(one, NULL, cls, name, batch_hashes[ids[i]], BATCH_TOKENS),
		                 expect[i]);
		ck_assert_msg(msgs[i].result == expect[i], "message %zu: %d batched, %d alone", i,
		              msgs[i].result, expect[i]);
	}
}

/* A command (format: %s for the prefix) on the two prefixes' keys: the
 * same bytes back. */
static void
assert_same_key(redisContext *admin, const char *format)
{
	redisReply *a = redisCommand(admin, format, "mt");
	redisReply *b = redisCommand(admin, format, "mb");
	size_t i;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(a->type, b->type);
	if (a->type == REDIS_REPLY_STRING) {
		ck_assert_uint_eq(a->len, b->len);
		ck_assert_msg(memcmp(a->str, b->str, a->len) == 0, "%s differs", format);
	} else {
		ck_assert_int_eq(a->type, REDIS_REPLY_ARRAY);
		ck_assert_uint_eq(a->elements, b->elements);
		for (i = 0; i < a->elements; i++) {
			ck_assert_uint_eq(a->element[i]->len, b->element[i]->len);
			ck_assert(memcmp(a->element[i]->str, b->element[i]->str,
			                 a->element[i]->len) == 0);
		}
	}
	freeReplyObject(a);
	freeReplyObject(b);
}

/* A batch learns what learning its messages one by one learns: the same
 * results (a repeat in the batch is ALREADY, one learned as the other class
 * MOVED), the same table bytes (counts and marks), counters, token count,
 * digests and sweep cursor. */
START_TEST(test_learn_batch)
{
	static const unsigned int before_spam[] = {0, 1, 2};
	static const enum ms_learn_result before_spam_r[] = {MS_LEARN_DONE, MS_LEARN_DONE,
	                                                     MS_LEARN_DONE};
	static const unsigned int before_ham[] = {7};
	static const enum ms_learn_result before_ham_r[] = {MS_LEARN_DONE};
	static const unsigned int ham[] = {3, 0, 4, 3, 7, 5, 1, 6, 0};
	static const enum ms_learn_result ham_r[] = {
	        MS_LEARN_DONE, MS_LEARN_MOVED, MS_LEARN_DONE, MS_LEARN_ALREADY, MS_LEARN_ALREADY,
	        MS_LEARN_DONE, MS_LEARN_MOVED, MS_LEARN_DONE, MS_LEARN_ALREADY};
	static const unsigned int spam[] = {2, 0, 8, 8, 9};
	static const enum ms_learn_result spam_r[] = {
	        MS_LEARN_ALREADY, MS_LEARN_MOVED, MS_LEARN_DONE, MS_LEARN_ALREADY, MS_LEARN_DONE};
	static const unsigned int again[] = {2, 8};
	static const enum ms_learn_result again_r[] = {MS_LEARN_ALREADY, MS_LEARN_ALREADY};
	struct ms_store *one = store_new();
	struct ms_store *batch =
	        ms_store_create(sock_path, NULL, "mb", TEST_TABLE_BITS, STORE_TIMEOUT_MSECS);
	redisContext *admin = redisConnectUnix(sock_path);
	struct ms_store_totals totals;
	unsigned long long memory;
	char err[256];

	ck_assert_ptr_nonnull(batch);
	ck_assert(admin != NULL && admin->err == 0);
	batch_messages();
	learn_both(one, batch, MS_CLASS_SPAM, before_spam, 3, before_spam_r);
	learn_both(one, batch, MS_CLASS_HAM, before_ham, 1, before_ham_r);
	learn_both(one, batch, MS_CLASS_HAM, ham, 9, ham_r);
	learn_both(one, batch, MS_CLASS_SPAM, spam, 5, spam_r);
	learn_both(one, batch, MS_CLASS_SPAM, again, 2, again_r);
	assert_same_key(admin, "GET %s{g}:t");
	assert_same_key(admin, "HMGET %s{g}:m spam ham tokens bits cursor");
	assert_same_key(admin, "HGETALL %s{g}:d");
	ck_assert_int_eq(ms_store_stats(batch, NULL, &totals, &memory, err, sizeof(err)), 0);
	ck_assert_uint_eq(totals.learned_spam, 4);
	ck_assert_uint_eq(totals.learned_ham, 6);
	ck_assert_uint_gt(totals.tokens, 100);
	redisFree(admin);
	ms_store_destroy(&one);
	ms_store_destroy(&batch);
}
END_TEST

/* A request whose connection was lost is not answered from the next one. */
START_TEST(test_fetch_pipeline)
{
	struct ms_store *store = store_new();
	struct ms_token_counts counts[4], counts2[4];
	struct ms_store_totals totals;
	unsigned long t1, t2;
	char err[256];

	ck_assert_int_eq(learn(store, NULL, MS_CLASS_SPAM, "a", msg_a, 3), MS_LEARN_DONE);
	ck_assert_int_eq(learn(store, NULL, MS_CLASS_HAM, "b", msg_b, 2), MS_LEARN_DONE);
	ck_assert_int_eq(ms_store_fetch_send(store, NULL, all, 4, &t1, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_store_fetch_send(store, NULL, all + 1, 3, &t2, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_store_fetch_receive(store, t1, 4, counts, &totals, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(ms_store_fetch_receive(store, t2, 3, counts2, &totals, err, sizeof(err)),
	                 0);
	ck_assert_uint_eq(counts[0].spam, 1);
	ck_assert_uint_eq(counts[2].spam, 1);
	ck_assert_uint_eq(counts[2].ham, 1);
	ck_assert_uint_eq(counts[3].ham, 1);
	ck_assert_mem_eq(counts + 1, counts2, 3 * sizeof(*counts));
	ck_assert_uint_eq(totals.learned_spam, 1);
	ck_assert_uint_eq(totals.learned_ham, 1);

	/* a failed send drops the connection, and with it t1's answer */
	ck_assert_int_eq(ms_store_fetch_send(store, NULL, all, 4, &t1, err, sizeof(err)), 0);
	redis_stop();
	ck_assert_int_eq(ms_store_fetch_send(store, NULL, all, 4, &t2, err, sizeof(err)), -1);
	redis_start();
	ck_assert_int_eq(ms_store_fetch_send(store, NULL, all, 4, &t2, err, sizeof(err)), 0);
	ck_assert_int_eq(ms_store_fetch_receive(store, t1, 4, counts, &totals, err, sizeof(err)),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, "connection lost"));
	ck_assert_int_eq(ms_store_fetch_receive(store, t2, 4, counts, &totals, err, sizeof(err)),
	                 0);
	ck_assert_uint_eq(counts[0].spam, 0);
	ms_store_destroy(&store);
}
END_TEST

/* A classification's reply is read straight from hiredis's buffer when it
 * is an array of integers: one that spans many reads and chunks comes out
 * whole, and any other reply (an error here) still fails the fetch
 * cleanly, the connection being good again afterwards. */
START_TEST(test_fetch_reply_shapes)
{
	enum { MANY = 10000 };
	struct ms_store *store = store_new();
	struct ms_store_totals totals;
	struct ms_token_counts *counts = calloc(MANY, sizeof(*counts));
	uint64_t *hashes = calloc(MANY, sizeof(*hashes));
	redisContext *ctx;
	redisReply *reply;
	char err[256];
	size_t i;

	ck_assert_ptr_nonnull(counts);
	ck_assert_ptr_nonnull(hashes);
	/* every slot, then every slot again (a message's tokens are sorted,
	 * but the fetch does not care) */
	for (i = 0; i < MANY; i++)
		hashes[i] = (uint64_t)(i % TEST_SLOTS) << (64 - TEST_TABLE_BITS);
	learn(store, NULL, MS_CLASS_SPAM, "all slots", hashes, TEST_SLOTS);
	fetch(store, NULL, hashes, MANY, counts, &totals);
	for (i = 0; i < MANY; i++) {
		ck_assert_uint_eq(counts[i].spam, 1);
		ck_assert_uint_eq(counts[i].ham, 0);
	}

	ctx = redisConnectUnix(sock_path);
	ck_assert(ctx != NULL && ctx->err == 0);
	reply = redisCommand(ctx, "DEL mt{g}:t");
	freeReplyObject(reply);
	reply = redisCommand(ctx, "LPUSH mt{g}:t x");
	ck_assert(reply != NULL && reply->type == REDIS_REPLY_INTEGER);
	freeReplyObject(reply);
	ck_assert_int_eq(
	        ms_store_fetch(store, NULL, hashes, MANY, counts, &totals, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "WRONGTYPE"));
	reply = redisCommand(ctx, "DEL mt{g}:t");
	freeReplyObject(reply);
	redisFree(ctx);
	fetch(store, NULL, hashes, 3, counts, &totals);
	ck_assert_uint_eq(counts[0].spam, 0);
	ms_store_destroy(&store);
	free(counts);
	free(hashes);
}
END_TEST

/* The token commands' wire format, byte for byte: numbers of every width
 * (two digits at a time), fixed runs of arguments and their failure. */
START_TEST(test_resp_format)
{
	static const char expected[] = "*7\r\n$11\r\nBITFIELD_RO\r\n$7\r\nms{g}:t\r\n"
	                               "$3\r\nGET\r\n$3\r\nu40\r\n$2\r\n#0\r\n"
	                               "$3\r\nGET\r\n$3\r\nu40\r\n$8\r\n#4194303\r\n"
	                               "$1\r\n9\r\n$2\r\n10\r\n$3\r\n-99\r\n$3\r\n100\r\n"
	                               "$20\r\n18446744073709551615\r\n$0\r\n\r\n";
	struct ms_resp resp;
	struct ms_resp_fixed get, minus, big;
	char arg[70];

	ms_resp_init(&resp);
	ms_resp_fixed_init(&get);
	ms_resp_fixed_add(&get, "GET");
	ms_resp_fixed_add(&get, "u40");
	ms_resp_fixed_init(&minus);
	ms_resp_fixed_add(&minus, "-99");
	ms_resp_command(&resp, 7);
	ms_resp_arg(&resp, "BITFIELD_RO", 11);
	ms_resp_arg_str(&resp, "ms{g}:t");
	ms_resp_arg_fixed(&resp, &get);
	ms_resp_arg_uint(&resp, '#', 0);
	ms_resp_arg_fixed(&resp, &get);
	ms_resp_arg_uint(&resp, '#', 4194303);
	ms_resp_arg_uint(&resp, '\0', 9);
	ms_resp_arg_uint(&resp, '\0', 10);
	ms_resp_arg_fixed(&resp, &minus);
	ms_resp_arg_uint(&resp, '\0', 100);
	ms_resp_arg_uint(&resp, '\0', 18446744073709551615ULL);
	ms_resp_arg_str(&resp, "");
	ck_assert(!ms_resp_failed(&resp));
	ck_assert_uint_eq(resp.len, sizeof(expected) - 1);
	ck_assert(memcmp(resp.data, expected, resp.len) == 0);

	/* an argument too long for a fixed run fails the command it joins */
	memset(arg, 'x', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = '\0';
	ms_resp_fixed_init(&big);
	ms_resp_fixed_add(&big, arg);
	ms_resp_command(&resp, 1);
	ms_resp_arg_fixed(&resp, &big);
	ck_assert(ms_resp_failed(&resp));
	ms_resp_free(&resp);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("redis");
	SRunner *sr;
	int failed;

	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		fprintf(stderr, "redis-server not installed: skipped\n");
		return 77;
	}
	if (mkdtemp(tmpdir) == NULL)
		return EXIT_FAILURE;
	snprintf(sock_path, sizeof(sock_path), "%s/redis.sock", tmpdir);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_learn_relearn);
	tcase_add_test(tc, test_per_user);
	tcase_add_test(tc, test_expiry);
	tcase_add_test(tc, test_expiry_script_name);
	tcase_add_test(tc, test_shared_slot);
	tcase_add_test(tc, test_unlearn_emptied_slot);
	tcase_add_test(tc, test_learn_halves_full_slot);
	tcase_add_test(tc, test_sweep_after_script_flush);
	tcase_add_test(tc, test_table_size_mismatch);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_redis_trouble);
	tcase_add_test(tc, test_filter_verdicts);
	tcase_add_test(tc, test_filter_classify_many);
	tcase_add_test(tc, test_filter_learn_many);
	tcase_add_test(tc, test_learn_batch);
	tcase_add_test(tc, test_fetch_pipeline);
	tcase_add_test(tc, test_fetch_reply_shapes);
	suite_add_tcase(s, tc);
	tc = tcase_create("resp");
	tcase_add_test(tc, test_resp_format);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	/* the fixture's redis-server is our child: keep tests in this process */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	snprintf(sock_path, sizeof(sock_path), "%s/redis.log", tmpdir);
	unlink(sock_path);
	rmdir(tmpdir);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
