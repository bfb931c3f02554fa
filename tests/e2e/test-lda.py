#!/usr/bin/env python3
"""mailsift-lda: as OpenSMTPD's mda action, and run directly for every exit code.

Real daemons: a private OpenSMTPD runs mailsift-lda as the virtual user, a
private Dovecot serves the Maildirs it writes over IMAP.
"""
import imaplib
import os
import pwd
import subprocess

import harness

USERS = ["alice@example.test", "bob@example.test"]
VMAIL = pwd.getpwnam("vmail")


def message(subject, body):
    return ("From: sender@remote.test\r\nTo: someone@example.test\r\n"
            "Subject: %s\r\nX-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=1.0\r\n"
            "\tfolded=1\r\n\r\n%s" % (subject, body)).encode()


class LdaTest(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.env.write_users(USERS, ["uid@example.test:{PLAIN}secret:%d:%d::::" %
                                     (VMAIL.pw_uid, VMAIL.pw_gid)])
        self.conf = self.env.write_ms_conf(hostname="mx.example.test",
                                           max_message_size="3M")
        self.lda = harness.binary("mailsift-lda")

    def run_lda(self, args, data=b"Subject: x\n\nbody\n", as_vmail=False, conf=None):
        cmd = [self.lda, "-c", conf or self.conf] + args
        if as_vmail:
            cmd = ["setpriv", "--reuid", "vmail", "--regid", "vmail", "--clear-groups"] + cmd
        return subprocess.run(cmd, input=data, capture_output=True)

    def only_message(self, user, folder=None):
        files = self.env.messages(user, folder)
        self.assertEqual(len(files), 1, files)
        with open(files[0], "rb") as f:
            return files[0], f.read()

    def assert_nothing_delivered(self, user):
        self.assertEqual(self.env.messages(user), [])
        self.assertEqual(self.env.messages(user, sub="tmp"), [])

    # --- smtpd's mda action, read back over IMAP
    def test_smtpd_mda_delivers_to_two_users(self):
        imap_port = self.env.start_dovecot()
        action = 'mda "%s -c %s -d %%{rcpt} -f %%{sender}"' % (self.lda, self.conf)
        port = self.env.start_smtpd(action, USERS)
        sent = {}
        for user in USERS:
            body = "Hello %s,\r\nline two\r\n\r\n-- \r\nsig" % user
            path = self.env.path("msg-" + user)
            with open(path, "wb") as f:
                f.write(message("for " + user, body))
            body += "\r\n"  # swaks ends DATA with CRLF "." CRLF
            subprocess.run(["swaks", "--silent", "2", "--server", "127.0.0.1", "--port",
                            str(port), "--from", "sender@remote.test", "--to", user,
                            "--data", path], check=True, capture_output=True)
            sent[user] = body.encode()
        for user in USERS:
            harness.wait_for(lambda: self.env.messages(user), 30, "delivery to " + user)
            name, data = self.only_message(user)
            self.assertRegex(os.path.basename(name),
                             r"^\d+\.M\d+P\d+Q\d+\.mx\.example\.test,S=%d,W=%d$"
                             % (len(data), len(data) + data.count(b"\n")))
            head, _, body = data.partition(b"\n\n")
            # the filter's own headers (no Redis here: Unknown) replace the
            # sender's forged ones
            lines = [l for l in head.split(b"\n") if not l.startswith(b"X-Spam-")]
            self.assertEqual(lines[0], b"Return-Path: <sender@remote.test>")
            self.assertEqual(lines[1], b"Delivered-To: " + user.encode())
            # once each, although smtpd's mda adds its own pair
            self.assertEqual(head.count(b"Return-Path:"), 1)
            self.assertEqual(head.count(b"Delivered-To:"), 1)
            self.assertEqual(head.count(b"X-Spam-Flag:"), 1)
            self.assertIn(b"\nX-Spam-Flag: NO\n", head)
            self.assertIn(b"\nX-Spam-Status: Unknown", head)
            self.assertNotIn(b"score=1.0", head)
            self.assertNotIn(b"folded=1", head)
            self.assertNotIn(b"\r", data)
            self.assertEqual(body, sent[user].replace(b"\r\n", b"\n"))
            st = os.stat(name)
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (VMAIL.pw_uid, 0o600))

            imap = imaplib.IMAP4("127.0.0.1", imap_port)
            imap.login(user, "secret")
            typ, count = imap.select("INBOX")
            self.assertEqual((typ, count[0]), ("OK", b"1"))
            typ, fetched = imap.fetch("1", "(BODY.PEEK[TEXT] BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            self.assertEqual(typ, "OK")
            self.assertEqual(fetched[0][1], sent[user])
            self.assertEqual(fetched[1][1].strip(), ("Subject: for " + user).encode())
            imap.logout()

    # --- direct runs: exit codes
    def test_delivers_as_the_user_uid_when_root(self):
        r = self.run_lda(["-d", "uid@example.test", "-f", ""])
        self.assertEqual(r.returncode, 0, r.stderr)
        name, data = self.only_message("uid@example.test")
        self.assertTrue(data.startswith(b"Return-Path: <>\nDelivered-To: uid@example.test\n"))
        self.assertEqual(os.stat(name).st_uid, VMAIL.pw_uid)
        self.assertEqual(os.stat(os.path.dirname(name)).st_uid, VMAIL.pw_uid)

    def test_detail_and_mailbox(self):
        r = self.run_lda(["-d", "alice+lists@example.test", "-m", "Junk"], as_vmail=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.only_message("alice@example.test", "Junk")
        self.assertTrue(os.path.exists(os.path.join(
            self.env.maildir("alice@example.test", "Junk"), "maildirfolder")))
        # Dovecot sees the Maildir++ folder as the mailbox Junk
        imap = imaplib.IMAP4("127.0.0.1", self.env.start_dovecot())
        imap.login("alice@example.test", "secret")
        self.assertEqual(imap.select("Junk"), ("OK", [b"1"]))
        self.assertEqual(imap.select("INBOX"), ("OK", [b"0"]))
        imap.logout()
        # a -m that is no safe folder name goes to INBOX, never elsewhere
        r = self.run_lda(["-d", "alice@example.test", "-m", "../../../escape"], as_vmail=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.only_message("alice@example.test")
        self.assertFalse(os.path.exists(self.env.path("escape")))

    def test_unknown_and_bogus_recipients(self):
        before = sorted(os.walk(self.env.dir))
        for rcpt in ["nobody@example.test", "../x@example.test", "a/b@example.test",
                     "/@example.test", "ctl\x01@example.test", "alice@", "@example.test",
                     "alice"]:
            r = self.run_lda(["-d", rcpt], as_vmail=True)
            self.assertEqual(r.returncode, 67, (rcpt, r.stderr))
            self.assertIn(b"unknown user", r.stderr)
        self.assertEqual(sorted(os.walk(self.env.dir)), before)

    def test_bad_usage(self):
        for args in [[], ["-d"], ["-x", "-d", "alice@example.test"],
                     ["-d", "alice@example.test", "extra"]]:
            r = self.run_lda(args)
            self.assertEqual(r.returncode, 64, (args, r.stderr))
            self.assertIn(b"usage: mailsift-lda", r.stderr)

    def test_config_errors_keep_the_mail(self):
        bad = self.env.path("bad.conf")
        with open(bad, "w") as f:
            f.write("userdb = passwd-file:%s\nmax_message_size = lots\n" % self.env.users_file)
        r = self.run_lda(["-d", "alice@example.test"], conf=bad)
        self.assertEqual(r.returncode, 75)
        self.assertIn(("%s:2: max_message_size:" % bad).encode(), r.stderr)
        r = self.run_lda(["-d", "alice@example.test"], conf=self.env.path("missing.conf"))
        self.assertEqual(r.returncode, 75)
        self.assertIn(b"No such file", r.stderr)
        # an unreadable userdb is a lookup failure, not an unknown user
        os.rename(self.env.users_file, self.env.users_file + ".away")
        r = self.run_lda(["-d", "alice@example.test"], as_vmail=True)
        self.assertEqual(r.returncode, 75, r.stderr)

    def test_unwritable_maildir(self):
        md = self.env.maildir("alice@example.test")
        os.makedirs(md)  # root's, 0755: vmail cannot create new/ tmp/ cur/
        os.chmod(md, 0o755)
        r = self.run_lda(["-d", "alice@example.test"], as_vmail=True)
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn(b"Permission denied", r.stderr)
        self.assert_nothing_delivered("alice@example.test")

    def test_full_filesystem(self):
        small = self.env.path("small")
        os.makedirs(small)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", small],
                       check=True)
        self.env.on_cleanup(lambda: subprocess.run(["umount", "-l", small]))
        os.chown(small, VMAIL.pw_uid, VMAIL.pw_gid)
        conf = self.env.write_ms_conf(mail_location="maildir:%s/%%d/%%n" % small)
        ok = self.run_lda(["-d", "alice@example.test"], as_vmail=True, conf=conf)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        big = b"Subject: big\n\n" + b"x" * 200 * 1024 + b"\n"
        r = self.run_lda(["-d", "alice@example.test"], data=big, as_vmail=True, conf=conf)
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn(b"No space left on device", r.stderr)
        md = os.path.join(small, "example.test", "alice")
        self.assertEqual(len(os.listdir(os.path.join(md, "new"))), 1)
        self.assertEqual(os.listdir(os.path.join(md, "tmp")), [])

    def test_too_big(self):
        data = b"Subject: big\n\n" + b"y" * (3 * 1024 * 1024 + 10)
        r = self.run_lda(["-d", "alice@example.test"], data=data, as_vmail=True)
        self.assertEqual(r.returncode, 75)
        self.assertIn(b"max_message_size", r.stderr)
        self.assert_nothing_delivered("alice@example.test")

    # --- bad input is delivered intact
    def test_odd_bytes_delivered_intact(self):
        cases = {
            "nul": b"Subject: nul\n\nbefore\x00after\n",
            "8bit": "Subject: caf\u00e9\n\n\u00e9t\u00e9 \u2603\n".encode() + b"\xff\xfe raw\n",
            "barelf": b"Subject: lf\n\nline\nline\n",
            "mixed": b"Subject: mixed\r\n\r\ncrlf\r\nlf\nbare cr\r here\r\n",
            "longheader": b"X-Long: " + b"h" * (1024 * 1024) + b"\r\nSubject: l\r\n\r\nb\r\n",
            "noheaders": b"\njust a body\n",
            "noeol": b"Subject: x\n\nno newline at the end",
            "mboxfrom": b"From sender@remote.test Sat Nov 28 09:00:00 2026\nSubject: m\n\nb\n",
        }
        for i, (label, data) in enumerate(sorted(cases.items())):
            user = USERS[i % 2]
            r = self.run_lda(["-d", user, "-f", "s@remote.test"], data=data, as_vmail=True)
            self.assertEqual(r.returncode, 0, (label, r.stderr))
            name, stored = self.only_message(user)
            want = data.replace(b"\r\n", b"\n")
            if label == "mboxfrom":
                want = want.split(b"\n", 1)[1]
            prefix = b"Return-Path: <s@remote.test>\nDelivered-To: %s\n" % user.encode()
            stored = b"".join(l for l in stored.splitlines(True) if not l.startswith(b"X-Spam-"))
            self.assertEqual(stored, prefix + want, label)
            os.unlink(name)


if __name__ == "__main__":
    harness.main()
