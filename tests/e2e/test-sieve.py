#!/usr/bin/env python3
"""Sieve at delivery, end to end (issue 5): mail delivered over LMTP to
mailsift-lmtpd for users with real scripts in their homes. Folders and flags
are checked through a real Dovecot IMAP FETCH FLAGS; vacation replies and
redirects reach a capture sendmail; reject gives 550 5.7.1; a broken script
keeps the message and writes its .log; a Sieve worker killed mid-delivery
costs a 4xx with nothing in new/, and the daemon keeps serving."""
import imaplib
import os
import subprocess

import harness
from lmtpclient import LmtpConn, data_block

USERS = ["alice@example.test", "bob@example.test", "carol@example.test",
         "dave@example.test", "eve@example.test"]
SCRIPTS = {
    "alice@example.test": """require ["fileinto", "imap4flags"];
if header :contains "subject" "report" {
  fileinto :flags ["\\\\Seen", "\\\\Flagged", "$project"] "Work";
}
""",
    "bob@example.test": """require ["vacation", "copy"];
redirect :copy "assistant@example.net";
vacation :days 1 :subject "Away" "I am away this week.";
""",
    "carol@example.test": """require "reject";
reject "This mailbox takes no mail.";
""",
    "dave@example.test": """require "fileinto";
fileinto "Work"
""",
    # its redirect reaches a sendmail that kills the worker running it
    "eve@example.test": """redirect "crash@example.net";
""",
}
# Records each call; a message for crash@ kills the process that ran it (the
# Sieve worker), as an i_panic() or the OOM killer would.
CAPTURE = """#!/bin/sh
case "$*" in *crash@example.net*) kill -9 $PPID; exit 75;; esac
f=%(dir)s/$(date +%%s%%N).$$
{ echo "ARGS: $*"; cat; } > "$f.tmp" && mv "$f.tmp" "$f"
"""


def message(subject, to, msgid):
    return ("From: Sender <sender@example.org>\r\nTo: %s\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.org>\r\n\r\nHello.\r\n" % (to, subject, msgid)).encode()


class SieveTest(harness.TestCase):
    def setUp(self):
        super().setUp()
        env = self.env
        env.write_users(USERS)
        for user, script in SCRIPTS.items():
            home = env.maildir(user)
            os.makedirs(home)
            with open(os.path.join(home, ".dovecot.sieve"), "w") as f:
                f.write(script)
        os.system("chown -R vmail:vmail %s" % env.mail_root)
        self.capture = env.path("sent")
        os.makedirs(self.capture)
        os.chmod(self.capture, 0o777)
        sendmail = env.path("sendmail")
        with open(sendmail, "w") as f:
            f.write(CAPTURE % {"dir": self.capture})
        os.chmod(sendmail, 0o755)
        env.start_lmtpd(sieve_worker=harness.binary("mailsift-sieve"),
                        sendmail_path=sendmail,
                        sieve_before=os.path.join(harness.SRCDIR, "sieve-scripts",
                                                  "spam-to-junk.sieve"))
        self.imap_port = env.start_dovecot()

    def lmtp(self, rcpt, msg):
        """One LMTP transaction; returns the reply to DATA."""
        conn = LmtpConn(self.env.lmtp_socket)
        self.addCleanup(conn.close)
        self.assertEqual(conn.greet().code, 250)
        conn.send(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" % rcpt.encode())
        self.assertEqual([r.code for r in conn.replies(3)], [250, 250, 354])
        conn.send(data_block(msg))
        return conn.reply()

    def imap_flags(self, user, folder):
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port)
        self.addCleanup(imap.logout)
        imap.login(user, "secret")
        typ, data = imap.select(folder, readonly=True)
        self.assertEqual(typ, "OK", data)
        if data[0] == b"0":
            return []
        typ, data = imap.fetch("1:*", "(FLAGS)")
        self.assertEqual(typ, "OK")
        return [d.decode() for d in data]

    def sent(self):
        out = []
        for name in sorted(os.listdir(self.capture)):
            if name.endswith(".tmp"):
                continue
            with open(os.path.join(self.capture, name), errors="replace") as f:
                out.append(f.read())
        return out

    def test_fileinto_with_flags_seen_through_imap(self):
        reply = self.lmtp("alice@example.test", message("monthly report", "alice@example.test", "a1"))
        self.assertEqual(reply.code, 250, reply)
        self.assertEqual(self.env.messages("alice@example.test"), [])
        flags = self.imap_flags("alice@example.test", "Work")
        self.assertEqual(len(flags), 1, flags)
        self.assertIn("\\Seen", flags[0])
        self.assertIn("\\Flagged", flags[0])
        self.assertIn("$project", flags[0])  # a keyword, through dovecot-keywords
        # a message the script does not file stays in INBOX, unflagged
        reply = self.lmtp("alice@example.test", message("lunch?", "alice@example.test", "a2"))
        self.assertEqual(reply.code, 250, reply)
        flags = self.imap_flags("alice@example.test", "INBOX")
        self.assertEqual(len(flags), 1, flags)
        self.assertNotIn("\\Seen", flags[0])

    def test_vacation_and_redirect_reach_sendmail(self):
        reply = self.lmtp("bob@example.test", message("question", "bob@example.test", "b1"))
        self.assertEqual(reply.code, 250, reply)
        self.assertEqual(len(self.env.messages("bob@example.test")), 1)  # redirect :copy
        sent = self.sent()
        redirects = [s for s in sent if "-- assistant@example.net" in s.splitlines()[0]]
        vacations = [s for s in sent if "-- sender@example.org" in s.splitlines()[0]]
        self.assertEqual(len(redirects), 1, sent)
        self.assertIn("Subject: question", redirects[0])
        self.assertEqual(len(vacations), 1, sent)
        self.assertIn("Auto-Submitted: auto-replied (vacation)", vacations[0])
        self.assertIn("I am away this week.", vacations[0])
        # vacation answers once per :days; the duplicates file remembers
        reply = self.lmtp("bob@example.test", message("again", "bob@example.test", "b2"))
        self.assertEqual(reply.code, 250, reply)
        vacations = [s for s in self.sent() if "-- sender@example.org" in s.splitlines()[0]]
        self.assertEqual(len(vacations), 1)

    def test_reject_is_550(self):
        reply = self.lmtp("carol@example.test", message("hi", "carol@example.test", "c1"))
        self.assertEqual((reply.code, reply.enh), (550, "5.7.1"), reply)
        self.assertEqual(self.env.messages("carol@example.test"), [])

    def test_reject_with_the_lda_is_exit_77(self):
        proc = subprocess.run([harness.binary("mailsift-lda"), "-c", self.env.ms_conf,
                               "-d", "carol@example.test", "-f", "sender@example.org"],
                              input=message("hi", "carol@example.test", "c2"),
                              capture_output=True)
        self.assertEqual(proc.returncode, 77, proc.stderr)
        self.assertIn(b"This mailbox takes no mail.", proc.stderr)
        self.assertEqual(self.env.messages("carol@example.test"), [])

    def test_broken_script_keeps_and_logs(self):
        reply = self.lmtp("dave@example.test", message("hi", "dave@example.test", "d1"))
        self.assertEqual(reply.code, 250, reply)
        self.assertEqual(len(self.env.messages("dave@example.test")), 1)
        log = harness.read_text(os.path.join(self.env.maildir("dave@example.test"),
                                             ".dovecot.sieve.log"))
        self.assertIn("error", log)

    def test_killed_worker_is_4xx_and_daemon_serves_on(self):
        reply = self.lmtp("eve@example.test", message("hi", "eve@example.test", "e1"))
        self.assertEqual(reply.code // 100, 4, reply)
        for sub in ("new", "cur"):
            self.assertEqual(self.env.messages("eve@example.test", sub=sub), [])
        self.assertIsNone(self.env.lmtpd.poll())
        # a fresh worker serves the next delivery
        reply = self.lmtp("alice@example.test", message("report", "alice@example.test", "a3"))
        self.assertEqual(reply.code, 250, reply)
        self.assertEqual(len(self.imap_flags("alice@example.test", "Work")), 1)


if __name__ == "__main__":
    harness.main()
