#!/usr/bin/env python3
"""The product's first scenario: a real OpenSMTPD delivers through
mailsift-lmtpd's socket, and a real Dovecot serves the result over IMAP
(issue 2, end-to-end test 1)."""
import imaplib
import subprocess

import harness

USERS = ["alice@example.test", "bob@example.test"]


def message(to, n):
    return ("From: Sender <sender@example.org>\r\n"
            "To: %s\r\n"
            "Subject: mailsift e2e %d\r\n"
            "Message-ID: <e2e-%d@example.org>\r\n"
            "\r\n"
            "Hello %s,\r\n"
            "\r\n"
            ".a line that starts with a dot\r\n"
            "..and one with two\r\n"
            "the end.\r\n" % (to, n, n, to)).encode()


class SmtpdToLmtpdTest(harness.TestCase):
    def test_smtpd_delivers_through_lmtpd_and_dovecot_serves_it(self):
        env = self.env
        env.write_users(USERS)
        env.start_lmtpd()
        imap_port = env.start_dovecot()
        smtp_port = env.start_smtpd('lmtp "%s" rcpt-to' % env.lmtp_socket, USERS)

        sent = {}
        for n, user in enumerate(USERS):
            sent[user] = message(user, n)
            path = env.path("msg%d.eml" % n)
            with open(path, "wb") as f:
                # swaks ends DATA with CRLF "." CRLF itself
                f.write(sent[user][:-2])
            out = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(smtp_port),
                                  "--from", "sender@example.org", "--to", user,
                                  "--helo", "client.example.org", "--data", path],
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

        for user in USERS:
            harness.wait_for(lambda: env.messages(user), timeout=60,
                             what="delivery to " + user)
        for user in USERS:
            files = env.messages(user)
            self.assertEqual(len(files), 1)
            with open(files[0], "rb") as f:
                stored = f.read()
            head, body = stored.split(b"\n\n", 1)
            self.assertIn(b"Return-Path: <sender@example.org>", head.split(b"\n"))
            self.assertIn(b"Delivered-To: " + user.encode(), head.split(b"\n"))
            self.assertIn(b"Received: ", head)  # smtpd's trace header came through
            sent_head, sent_body = sent[user].split(b"\r\n\r\n", 1)
            self.assertEqual(body, sent_body.replace(b"\r\n", b"\n"))
            self.assertNotIn(b"\r", stored)  # stored with LF, as Dovecot expects

            imap = imaplib.IMAP4("127.0.0.1", imap_port)
            imap.login(user, "secret")
            typ, data = imap.select("INBOX")
            self.assertEqual((typ, data[0]), ("OK", b"1"))
            typ, data = imap.fetch("1", "(BODY.PEEK[TEXT] BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            self.assertEqual(typ, "OK")
            parts = {item[0].split(b" ")[-2] if b"HEADER" in item[0] else b"TEXT": item[1]
                     for item in data if isinstance(item, tuple)}
            self.assertEqual(parts[b"TEXT"], sent_body)
            self.assertIn(b"Subject: mailsift e2e %d" % USERS.index(user),
                          b"".join(v for k, v in parts.items() if k != b"TEXT"))
            imap.logout()
        self.assertNotIn("Panic", harness.read_text(env.path("lmtpd.log")))


if __name__ == "__main__":
    harness.main()
