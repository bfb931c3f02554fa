#!/usr/bin/env python3
"""mailsift-learnd as a service with a real Redis: the spool is learned
exactly once through Redis outages, kill -9 and SIGTERM; mailsift (the
command line tool) and the learner socket agree."""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time

import harness

USER = "test@example.test"


def corpus(folder, count, skip=0):
    """count corpus messages with distinct bodies: the store's digest counts
    a message once even if its transport headers differ, and these tests
    count messages."""
    d = os.path.join(harness.CORPUS, folder)
    seen, out = set(), []
    for name in sorted(os.listdir(d))[skip:]:
        path = os.path.join(d, name)
        with open(path, "rb") as f:
            text = f.read()
        digest = hashlib.sha256(text[text.find(b"\n\n"):]).digest()
        if digest not in seen:
            seen.add(digest)
            out.append(path)
        if len(out) == count:
            return out
    raise RuntimeError("corpus too small")


class LearndTest(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.env.write_users([USER])
        self.env.write_ms_conf()

    def wait_spool_empty(self, timeout=120):
        harness.wait_for(lambda: not self.env.spool_files("new"), timeout, "spool new/ empty")

    def start_learning_200(self):
        """100 spam and 100 ham spooled, a learner started and caught mid-way."""
        self.env.start_redis()
        self.env.spool(USER, "spam", corpus("spam", 100), poke=False)
        self.env.spool(USER, "ham", corpus("easy_ham", 100), poke=False)
        proc = self.env.start_learnd()
        harness.wait_for(lambda: len(self.env.spool_files("new")) < 200, what="first learns")
        return proc

    def learned(self):
        st = self.env.mailsift_stats()
        return st["learned_spam"], st["learned_ham"]

    def test_spooled_while_redis_down_learned_once(self):
        spam, ham = corpus("spam", 100), corpus("easy_ham", 100)
        self.env.start_learnd()
        self.env.spool(USER, "spam", spam)
        self.env.spool(USER, "ham", ham)
        # The learner tried, Redis did not confirm: every file waits.
        harness.wait_for(lambda: "will retry" in self.env.learnd_log(), what="a failed learn")
        self.assertEqual(len(self.env.spool_files("new")), 200)
        self.env.start_redis()
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (100, 100))
        self.assertEqual(self.env.spool_files("bad"), [])
        self.assertIsNone(self.env.learnd.poll())
        log = self.env.learnd_log()
        self.assertIn("learn: user=%s class=spam" % USER, log)
        self.assertIn("learn: user=%s class=ham" % USER, log)

    def vmail_dirs(self, top, *subs):
        """top and its subs, made as the mail user's (as Dovecot would)."""
        rel = os.path.relpath(top, self.env.mail_root).split(os.sep)
        for i in range(len(rel)):
            d = os.path.join(self.env.mail_root, *rel[:i + 1])
            os.makedirs(d, 0o700, exist_ok=True)
            os.chown(d, harness.VMAIL.pw_uid, harness.VMAIL.pw_gid)
        for sub in subs:
            os.makedirs(os.path.join(top, sub), 0o700, exist_ok=True)
            os.chown(os.path.join(top, sub), harness.VMAIL.pw_uid, harness.VMAIL.pw_gid)

    def write_refs(self, cls, maildir, refs):
        """A format-4 spool file naming files of maildir, as the Dovecot
        plugin writes one for a MOVE; returns its new/ name."""
        now = time.time()
        unique = "%010d.%06d.%d.0.e2e" % (int(now), int(now * 1e6) % 1000000, os.getpid())
        text = ("X-Mailsift-Spool: 4\nX-Mailsift-User: %s\nX-Mailsift-Class: %s\n"
                "X-Mailsift-Batch: %010d\nX-Mailsift-Maildir: %s\n\n" % (USER, cls, len(refs), maildir)
                + "".join("=%s\n" % ref for ref in refs))
        tmp = self.env.path("spool", "tmp", unique)
        with open(tmp, "w") as f:
            f.write(text)
        os.chown(tmp, harness.VMAIL.pw_uid, harness.VMAIL.pw_gid)
        name = "%s.%s" % (cls, unique)
        os.rename(tmp, self.env.path("spool", "new", name))
        return name

    def spool_version(self, name):
        try:
            with open(self.env.path("spool", "new", name), "rb") as f:
                return f.readline().decode().strip()
        except FileNotFoundError:
            return None

    def junk_with(self, n, stamp):
        """USER's Junk Maildir holding n corpus spam as Dovecot names them
        (the names start with stamp); returns (its path, the names)."""
        junk = self.env.maildir(USER, "Junk")
        self.vmail_dirs(junk, "new", "cur", "tmp")
        names = []
        for i, src in enumerate(corpus("spam", n)):
            names.append("%s%02d.M%dP4242.mx,S=%d" % (stamp, i, i, os.path.getsize(src)))
            dst = os.path.join(junk, "new", names[-1])
            shutil.copyfile(src, dst)
            os.chown(dst, harness.VMAIL.pw_uid, harness.VMAIL.pw_gid)
        return junk, names

    def test_references_pinned_while_redis_down_learned_once(self):
        """Format 4 (the plugin's references to Maildir files) is pinned
        into msg/ while Redis is down, so the user's expunge before Redis is
        back loses nothing: a file Dovecot renamed is found, one already gone
        is skipped with a log line, every other message learned once."""
        env = self.env
        junk, names = self.junk_with(6, "17643400")
        env.start_learnd()
        # an older file fails first and holds the learning pass: only a
        # pin pass reaches the references
        env.spool(USER, "ham", corpus("easy_ham", 1))
        harness.wait_for(lambda: "will retry" in env.learnd_log(), what="a failed learn")
        # before the learner looks: one message flagged (Dovecot renames it
        # into cur/), one expunged
        os.rename(os.path.join(junk, "new", names[3]),
                  os.path.join(junk, "cur", names[3] + ":2,S"))
        os.unlink(os.path.join(junk, "new", names[5]))
        name = self.write_refs("spam", junk, ["new/" + n for n in names])
        self.assertEqual(env.learner_request("POKE"), "OK")
        harness.wait_for(lambda: self.spool_version(name) == "X-Mailsift-Spool: 3",
                         what="the references pinned")
        self.assertEqual(len(env.spool_files("msg")), 5)
        # the user expunges them all while Redis is still down
        for sub in ("new", "cur"):
            for n in os.listdir(os.path.join(junk, sub)):
                os.unlink(os.path.join(junk, sub, n))
        env.start_redis()
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (5, 1))
        self.assertEqual(env.spool_files("bad"), [])
        self.assertEqual(env.spool_files("msg"), [])
        log = env.learnd_log()
        self.assertIn("spool: %s: pinned 5 of 6 messages" % name, log)
        self.assertIn("spool: %s: message 6 of 6: %s/new/%s: gone before it was pinned "
                      "(expunged?): skipped" % (name, junk, names[5]), log)
        self.assertEqual(len(re.findall(r"class=spam size=\d+ result=learned", log)), 5)
        self.assertNotIn("already learned", log)
        self.assertIsNone(env.learnd.poll())

    def test_references_without_links_read_from_the_maildir(self):
        """Where no link can be made (here: no msg/), a format-4 file stays
        as it is and its messages are read from the Maildir, a renamed one
        under its new name."""
        env = self.env
        junk, names = self.junk_with(3, "17643401")
        env.start_redis()
        env.start_learnd()
        os.rmdir(env.path("spool", "msg"))
        os.rename(os.path.join(junk, "new", names[1]),
                  os.path.join(junk, "cur", names[1] + ":2,S"))
        name = self.write_refs("spam", junk, ["new/" + n for n in names])
        self.assertEqual(env.learner_request("POKE"), "OK")
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (3, 0))
        self.assertEqual(env.spool_files("bad"), [])
        log = env.learnd_log()
        self.assertRegex(log, r"spool: %s: cannot pin: .*msg.*: learning from the Maildir "
                              r"files directly" % re.escape(name))
        # Dovecot's files are Dovecot's
        self.assertEqual(len(os.listdir(os.path.join(junk, "new"))) +
                         len(os.listdir(os.path.join(junk, "cur"))), 3)

    def test_kill9_mid_batch_then_restart_exactly_once(self):
        proc = self.start_learning_200()
        proc.kill()
        proc.wait()
        left = len(self.env.spool_files("new"))
        spam_n, ham_n = self.learned()
        # killed between learning and deleting: at most one file counted but kept
        self.assertIn(spam_n + ham_n - (200 - left), (0, 1))
        self.env.start_learnd()
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (100, 100))

    def test_sigterm_finishes_in_flight_work(self):
        proc = self.start_learning_200()
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(30), 0)
        left = len(self.env.spool_files("new"))
        spam_n, ham_n = self.learned()
        # every file learned was deleted and every deleted file learned
        self.assertEqual(spam_n + ham_n, 200 - left)
        self.assertIn("terminating", self.env.learnd_log())
        self.assertFalse(harness.can_connect(self.env.path("learner.sock")))

    def test_relearn_counts_once_and_move_moves(self):
        msg = corpus("spam", 1)[0]
        self.env.start_redis()
        self.env.start_learnd()
        self.env.spool(USER, "spam", [msg])
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (1, 0))
        self.env.spool(USER, "spam", [msg])
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (1, 0))
        self.assertIn("result=already learned", self.env.learnd_log())
        # the user moves it out of Junk: unlearned as spam, learned as ham
        self.env.spool(USER, "ham", [msg])
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (0, 1))
        self.assertIn("result=moved", self.env.learnd_log())

    def test_survives_redis_restart(self):
        self.env.start_redis()
        self.env.start_learnd()
        self.env.spool(USER, "spam", corpus("spam", 10))
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (10, 0))
        self.env.stop_redis()
        self.env.spool(USER, "ham", corpus("easy_ham", 10))
        harness.wait_for(lambda: "will retry" in self.env.learnd_log(), what="a failed learn")
        self.assertEqual(len(self.env.spool_files("new")), 10)
        self.env.start_redis()  # a fresh, empty Redis on the same socket
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (0, 10))
        self.assertIsNone(self.env.learnd.poll())

    def test_bad_spool_files_moved_aside(self):
        self.env.start_redis()
        self.env.start_learnd()
        new = self.env.path("spool", "new")
        for name, text in (("spam.1.garbage", b"not a spool file\n"),
                           ("ham.2.nouser", b"X-Mailsift-Spool: 1\nX-Mailsift-Class: ham\n\nx"),
                           ("junk.3.badname", b"whatever")):
            with open(os.path.join(new, name), "wb") as f:
                f.write(text)
        self.env.spool(USER, "spam", corpus("spam", 1))
        self.wait_spool_empty()
        self.assertEqual(self.env.spool_files("bad"),
                         ["ham.2.nouser", "junk.3.badname", "spam.1.garbage"])
        self.assertEqual(self.learned(), (1, 0))
        log = self.env.learnd_log()
        self.assertRegex(log, r"spam\.1\.garbage: .*not a spool file.*moved to bad/")
        self.assertRegex(log, r"ham\.2\.nouser: .*lacks")

    def test_batch_killed_midway_learned_once_after_restart(self):
        spam = corpus("spam", 300)
        self.env.start_redis()
        self.env.spool(USER, "spam", spam, poke=False, batch=True)
        self.assertEqual(len(self.env.spool_files("new")), 1)
        proc = self.env.start_learnd()
        harness.wait_for(lambda: "result=learned" in self.env.learnd_log(), what="first learns")
        # Redis stopped holds the learner mid-batch; then kill -9 it there.
        os.kill(self.env.redis_pid, signal.SIGSTOP)
        try:
            proc.kill()
            proc.wait()
        finally:
            os.kill(self.env.redis_pid, signal.SIGCONT)
        done, _ = self.learned()
        self.assertTrue(0 < done < 300, done)
        self.assertEqual(len(self.env.spool_files("new")), 1)
        self.env.start_learnd()
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (300, 0))
        # read again from its start: what the first run learned counts once
        self.assertEqual(self.env.learnd_log().count("result=already learned"), done)
        self.assertEqual(self.env.spool_files("bad"), [])

    def test_corrupt_batches_logged_aside_and_serving_goes_on(self):
        self.env.write_ms_conf(max_message_size="1k")
        self.env.start_redis()
        self.env.start_learnd()
        msgs = [b"Subject: batch %d\n\nbatch message number %d\n" % (i, i) for i in range(3)]
        head = (b"X-Mailsift-Spool: 2\nX-Mailsift-User: %s\nX-Mailsift-Class: spam\n"
                % USER.encode())
        records = b"".join(b"%d\n%s\n" % (len(m), m) for m in msgs)
        big = b"Subject: big\n\n" + b"word " * 400
        new = self.env.path("spool", "new")
        for name, text in (
                # cut inside the third record: two learned, the file aside
                ("spam.1.truncated", head + b"X-Mailsift-Batch: 3\n\n" + records[:-10]),
                ("spam.2.nocount", head + b"\n" + records),
                ("spam.3.zero", head + b"X-Mailsift-Batch: 0\n\n"),
                # over max_message_size: that one skipped, the others learned
                ("spam.4.big", head + b"X-Mailsift-Batch: 2\n\n%d\n%s\n%d\n%s\n"
                 % (len(big), big, len(msgs[2]), msgs[2]))):
            with open(os.path.join(new, name), "wb") as f:
                f.write(text)
        self.assertEqual(self.env.learner_request("POKE"), "OK")
        self.wait_spool_empty()
        self.assertEqual(self.env.spool_files("bad"),
                         ["spam.1.truncated", "spam.2.nocount", "spam.3.zero"])
        log = self.env.learnd_log()
        self.assertRegex(log, r"spam\.1\.truncated: message 3 of 3: truncated.*"
                              r"moved to bad/ after 2 of 3 messages")
        self.assertRegex(log, r"spam\.2\.nocount: .*lacks X-Mailsift-Batch.*moved to bad/")
        self.assertRegex(log, r"spam\.3\.zero: .*bad X-Mailsift-Batch.*moved to bad/")
        self.assertRegex(log, r"spam\.4\.big: message 1 of 2: \d+ bytes is over "
                              r"max_message_size: skipped")
        self.assertEqual(self.learned(), (3, 0))
        # still serving: a sound batch after them is learned
        hams = []
        for i in range(2):
            hams.append(self.env.path("ham%d" % i))
            with open(hams[-1], "wb") as f:
                f.write(b"Subject: ham %d\n\nan ordinary note, number %d\n" % (i, i))
        self.env.spool(USER, "ham", hams, batch=True)
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (3, 2))
        self.assertIsNone(self.env.learnd.poll())

    def test_cli_and_socket_agree(self):
        env = self.env
        env.start_redis()
        env.start_learnd()
        spam, ham = corpus("spam", 20), corpus("easy_ham", 20)
        out = env.mailsift("learn", "spam", *spam).stdout
        self.assertIn("20 learned", out)
        out = env.mailsift("learn", "ham", *ham).stdout
        self.assertIn("20 learned", out)
        out = env.mailsift("learn", "spam", spam[0]).stdout
        self.assertIn("1 already learned", out)
        cli = env.mailsift_stats()
        reply = env.learner_request("STATS")
        self.assertTrue(reply.startswith("OK "), reply)
        sock = dict(kv.split("=") for kv in reply[3:].split())
        for key in ("learned_spam", "learned_ham", "tokens", "table_slots", "memory_bytes"):
            self.assertIn(key, cli)
        self.assertEqual((int(sock["learned_spam"]), int(sock["learned_ham"]),
                          int(sock["tokens"]), int(sock["table_slots"])),
                         (cli["learned_spam"], cli["learned_ham"], cli["tokens"],
                          cli["table_slots"]))
        self.assertEqual((cli["learned_spam"], cli["learned_ham"]), (20, 20))
        self.assertEqual(cli["table_slots"], 1 << 22)  # the default token_table_bits
        # the same message scores the same through both
        probe = corpus("spam", 1, skip=100)[0]
        line = env.mailsift("classify", probe).stdout
        m = re.fullmatch(r"(.+)\t([01]\.\d{4})\t(spam|ham)\n", line)
        self.assertIsNotNone(m, line)
        self.assertEqual(m.group(1), probe)
        with open(probe, "rb") as f:
            body = f.read()
        reply = env.learner_request("CLASSIFY %d" % len(body), body)
        self.assertEqual(reply.split()[:3], ["OK", m.group(2), m.group(3)])
        # learning over the socket: done, then already
        body = b"Subject: socket test\n\nlearned over the learner socket\n"
        self.assertEqual(env.learner_request("LEARN ham %d" % len(body), body), "OK done")
        self.assertEqual(env.learner_request("LEARN ham %d" % len(body), body), "OK already")
        self.assertEqual(self.learned(), (20, 21))

    def test_cli_classify_many_as_one_by_one(self):
        """classify FILE... pipelines its files (16 at a time): every line must
        be what classifying that file alone prints, a missing file in the
        middle included."""
        env = self.env
        env.start_redis()
        env.mailsift("learn", "spam", *corpus("spam", 20))
        env.mailsift("learn", "ham", *corpus("easy_ham", 20))
        probes = corpus("spam", 20, skip=100) + corpus("easy_ham", 17, skip=100)
        probes.insert(21, env.path("missing"))
        r = env.mailsift("classify", *probes, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing: No such file or directory", r.stderr)
        alone = "".join(env.mailsift("classify", p).stdout for p in probes if "missing" not in p)
        self.assertEqual(r.stdout, alone)
        self.assertEqual(len(r.stdout.splitlines()), 37)
        self.assertIn("\tspam\n", r.stdout)
        self.assertIn("\tham\n", r.stdout)

    def test_socket_bad_requests(self):
        env = self.env
        env.start_redis()
        env.start_learnd()
        self.assertEqual(env.learner_request("HELLO"), "ERR unknown command")
        self.assertEqual(env.learner_request("LEARN junk 5", b"hello"), "ERR class must be spam or ham")
        self.assertTrue(env.learner_request("LEARN spam 0").startswith("ERR message size"))
        self.assertTrue(env.learner_request("CLASSIFY 999999999999").startswith(
            "ERR message size"))
        self.assertEqual(env.learner_request("X" * 2000), "ERR line too long")
        self.assertEqual(env.learner_request("POKE"), "OK")
        # still serving
        self.assertTrue(env.learner_request("STATS").startswith("OK learned_spam="))
        self.assertIsNone(env.learnd.poll())

    def test_cli_errors_and_stdin(self):
        env = self.env
        env.start_redis()
        msg = corpus("spam", 1)[0]
        with open(msg) as f:
            text = f.read()
        out = env.mailsift("learn", "spam", "-", stdin=text).stdout
        self.assertIn("1 learned", out)
        r = env.mailsift("learn", "spam", msg, env.path("missing"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("1 already learned", r.stdout)
        self.assertIn("1 failed", r.stdout)
        self.assertIn("missing: No such file or directory", r.stderr)
        for args in (["learn", "junk", msg], ["learn", "spam"], ["classify"], ["frobnicate"],
                     ["stats", "extra"]):
            r = env.mailsift(*args, check=False)
            self.assertEqual(r.returncode, 64, args)
            self.assertIn("usage:", r.stderr)
        with open(env.path("bad.conf"), "w") as f:
            f.write("bogus = 1\n")
        r = subprocess.run([harness.binary("mailsift"), "-c", env.path("bad.conf"), "stats"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 78)
        self.assertIn("bad.conf:1: bogus: unknown key", r.stderr)

    def test_per_user_statistics(self):
        env = self.env
        env.write_ms_conf(per_user="yes")
        env.start_redis()
        env.start_learnd()
        other = "other@example.test"
        env.spool(USER, "spam", corpus("spam", 3))
        env.spool(other, "ham", corpus("easy_ham", 2))
        self.wait_spool_empty()
        env.mailsift("-u", other, "learn", "spam", *corpus("spam", 1, skip=50))
        mine, theirs = env.mailsift_stats("-u", USER), env.mailsift_stats("-u", other)
        self.assertEqual((mine["user"], mine["learned_spam"], mine["learned_ham"]), (USER, 3, 0))
        self.assertEqual((theirs["learned_spam"], theirs["learned_ham"]), (1, 2))
        reply = env.learner_request("STATS " + other)
        self.assertIn("learned_spam=1 learned_ham=2 ", reply)
        # -u is refused where there are no per-user statistics
        env.write_ms_conf(per_user="no")
        r = env.mailsift("stats", "-u", USER, check=False)
        self.assertEqual(r.returncode, 64)
        self.assertIn("-u needs per_user = yes", r.stderr)

    def test_detaches_writes_pid_file_and_drops_privileges(self):
        self.env.start_redis()
        subprocess.run([harness.binary("mailsift-learnd"), "-c", self.env.ms_conf], check=True)
        pid = harness.read_pidfile(self.env.path("mailsift.pid"))
        self.env.on_cleanup(lambda: harness.stop_pid(pid))
        harness.wait_for(lambda: harness.can_connect(self.env.path("learner.sock")),
                         what="learner socket")
        # the socket is bound (and takes connections) as root, just before
        # the switch to vmail: wait for the switch, do not race it
        want = [[str(harness.VMAIL.pw_uid)] * 4, [str(harness.VMAIL.pw_gid)] * 4]

        def ids():
            with open("/proc/%d/status" % pid) as f:
                return [line.split()[1:] for line in f if line.startswith(("Uid:", "Gid:"))]
        harness.wait_for(lambda: ids() == want, 10, "the learner to run as vmail")
        os.kill(pid, signal.SIGHUP)  # reopens its logs, keeps serving
        self.env.spool(USER, "spam", corpus("spam", 3))
        self.wait_spool_empty()
        self.assertEqual(self.learned(), (3, 0))
        self.assertTrue(harness.pid_alive(pid))
        harness.stop_pid(pid)
        self.assertFalse(harness.pid_alive(pid))


if __name__ == "__main__":
    harness.main()
