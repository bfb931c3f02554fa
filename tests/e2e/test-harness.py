#!/usr/bin/env python3
"""The harness itself: the real daemons start privately, serve, and stop."""
import imaplib
import os
import subprocess

import harness


class HarnessTest(harness.TestCase):
    def test_redis_starts_and_stops(self):
        self.env.start_redis()
        self.assertEqual(self.env.redis_cli("ping"), "PONG")
        self.env.stop_redis()
        self.assertFalse(harness.pid_alive(self.env.redis_pid))

    def test_dovecot_serves_maildir_over_imap(self):
        self.env.write_users(["test@example.test"])
        port = self.env.start_dovecot()
        # A message placed by hand in new/ is what IMAP must show.
        md = self.env.maildir("test@example.test")
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        body = b"From: a@example.test\nSubject: hello\n\nbody text\n"
        with open(os.path.join(md, "new", "1.M1P1.host"), "wb") as f:
            f.write(body)
        subprocess.run(["chown", "-R", "vmail:vmail", self.env.mail_root], check=True)
        imap = imaplib.IMAP4("127.0.0.1", port)
        imap.login("test@example.test", "secret")
        typ, data = imap.select("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0], b"1")
        typ, data = imap.fetch("1", "(BODY.PEEK[])")
        self.assertEqual(data[0][1], body.replace(b"\n", b"\r\n"))
        imap.logout()

    def test_smtpd_config_accepted(self):
        self.env.write_users(["test@example.test"])
        port = self.env.start_smtpd('lmtp "%s" rcpt-to' % self.env.path("lmtp.sock"),
                                    ["test@example.test"])
        self.assertTrue(harness.can_connect(port))
        self.assertIn("uptime=", self.env.smtpctl("show", "stats"))


if __name__ == "__main__":
    harness.main()
