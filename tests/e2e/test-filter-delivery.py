#!/usr/bin/env python3
"""The filter at delivery, end to end: a private redis-server trained on a
few hundred corpus messages through ms_filter_learn(); mailsift-lmtpd (and
mailsift-lda) file spam into .Junk with the X-Spam-* headers, ham into
INBOX; with Redis stopped, delivery still succeeds, marked Unknown."""
import os
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

USER = "alice@example.test"
TRAIN_PER_CLASS = 150


def corpus(folder):
    d = os.path.join(harness.CORPUS, folder)
    return sorted(os.path.join(d, n) for n in os.listdir(d))


def deliver(test, path):
    """One message to USER over mailsift-lmtpd's socket, accepted."""
    with open(path, "rb") as f:
        data = f.read()
    with smtplib.LMTP(test.env.lmtp_socket) as lmtp:
        refused = lmtp.sendmail("sender@remote.test", [USER], data)
    test.assertEqual(refused, {})


class FilterDeliveryTest(harness.TestCase):
    def setUp(self):
        super().setUp()
        spam, ham = corpus("spam"), corpus("easy_ham")
        # train on the first ones, deliver messages that were not learned
        self.train = {"spam": spam[:TRAIN_PER_CLASS], "ham": ham[:TRAIN_PER_CLASS]}
        self.unseen = {"spam": spam[-40:], "ham": ham[-40:]}
        self.env.write_users([USER])
        self.env.start_redis()
        conf = self.env.write_ms_conf()
        for cls, files in self.train.items():
            subprocess.run([harness.binary("filter-learn"), conf, cls] + files, check=True)
        self.env.start_lmtpd()

    def headers(self, path):
        with open(path, "rb") as f:
            head = f.read().split(b"\n\n", 1)[0]
        return [line for line in head.split(b"\n") if line.startswith(b"X-Spam-")]

    def delivered(self, folder):
        return self.env.messages(USER, folder)

    def test_spam_to_junk_ham_to_inbox(self):
        spam_in_junk = 0
        for path in self.unseen["spam"]:
            deliver(self, path)
        for name in self.delivered("Junk"):
            flag, score, status = self.headers(name)
            self.assertEqual(flag, b"X-Spam-Flag: YES")
            self.assertRegex(score, rb"^X-Spam-Score: (0\.\d\d|1\.00)$")
            self.assertRegex(status, rb"^X-Spam-Status: Yes, score=[01]\.\d+ tokens=\d+")
            spam_in_junk += 1
        # a filter trained on 300 messages misses a few, not most
        self.assertGreaterEqual(spam_in_junk, 30, "only %d of 40 spam in Junk" % spam_in_junk)
        for name in self.delivered("INBOX"):
            self.assertEqual(self.headers(name)[0], b"X-Spam-Flag: NO")

        for path in self.unseen["ham"]:
            deliver(self, path)
        inbox_ham = len(self.delivered("INBOX")) - (40 - spam_in_junk)
        self.assertEqual(len(self.delivered("Junk")), spam_in_junk, "ham filed as spam")
        self.assertEqual(inbox_ham, 40)
        log = harness.read_text(self.env.path("lmtpd.log"))
        self.assertIn("filter: score=", log)
        # 300 messages fill a few percent of the default table
        self.assertNotIn("token table", log)

    def test_lda_files_spam(self):
        conf = self.env.ms_conf
        with open(self.unseen["spam"][0], "rb") as f:
            r = subprocess.run([harness.binary("mailsift-lda"), "-c", conf, "-d", USER,
                                "-f", "s@remote.test"], input=f.read(), capture_output=True,
                               user=harness.VMAIL.pw_uid, group=harness.VMAIL.pw_gid,
                               extra_groups=[])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.delivered("Junk")), 1)
        self.assertEqual(self.headers(self.delivered("Junk")[0])[0], b"X-Spam-Flag: YES")

    def test_redis_down_delivers_unknown(self):
        self.env.stop_redis()
        deliver(self, self.unseen["spam"][0])
        inbox = self.delivered("INBOX")
        self.assertEqual(len(inbox), 1)
        self.assertEqual(self.delivered("Junk"), [])
        flag, score, status = self.headers(inbox[0])
        self.assertEqual(flag, b"X-Spam-Flag: NO")
        self.assertRegex(status, rb"^X-Spam-Status: Unknown, .*redis unavailable")
        log = harness.read_text(self.env.path("lmtpd.log"))
        self.assertIn("message not filtered", log)


class CrowdedTableTest(harness.TestCase):
    """A table too small for what it learned: delivery goes on, and the log
    says so, once per process."""

    def test_crowded_table_warns_once(self):
        bits = 10  # 1,024 slots: 30 messages' tokens fill most of them
        self.env.write_users([USER])
        self.env.start_redis()
        conf = self.env.write_ms_conf(token_table_bits=bits)
        for cls, folder in (("spam", "spam"), ("ham", "easy_ham")):
            subprocess.run([harness.binary("filter-learn"), conf, cls] + corpus(folder)[:15],
                           check=True)
        self.env.start_lmtpd(token_table_bits=bits)
        for path in corpus("spam")[-2:]:
            deliver(self, path)
        self.assertEqual(len(self.env.messages(USER, "Junk") + self.env.messages(USER)), 2)
        log = harness.read_text(self.env.path("lmtpd.log"))
        self.assertRegex(log, r"token table (\d+)% full \(\d+ of 1024 slots in use\)")
        self.assertEqual(log.count("token table"), 1, log)


if __name__ == "__main__":
    harness.main()
