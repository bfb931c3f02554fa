#!/usr/bin/env python3
"""mailsift-lmtpd over raw LMTP: pipelining and per-recipient replies in
RCPT order, BDAT, and bad input that must get a clear reply while the
server goes on serving (issue 2, end-to-end tests 2 and 5)."""
import os

import harness
from lmtpclient import LmtpConn, data_block

USERS = ["alice@example.test", "bob@example.test", "carol@example.test"]


def lf(msg):
    return msg.replace(b"\r\n", b"\n")


class LmtpdTestCase(harness.TestCase):
    max_message_size = "1M"

    def setUp(self):
        super().setUp()
        self.env.write_users(USERS)
        self.env.start_lmtpd(max_message_size=self.max_message_size)

    def connect(self):
        conn = LmtpConn(self.env.lmtp_socket)
        self.addCleanup(conn.close)
        self.assertEqual(conn.greet().code, 250)
        return conn

    def assert_delivered(self, user, msg, sender=""):
        """user's Maildir new/ holds exactly one file: msg with LF line
        endings, below the headers delivery added."""
        files = self.env.messages(user)
        self.assertEqual(len(files), 1, "%s: %r" % (user, files))
        with open(files[0], "rb") as f:
            stored = f.read()
        self.assertTrue(stored.endswith(lf(msg)), "%s: message altered" % user)
        added = stored[:len(stored) - len(lf(msg))]
        self.assertIn(b"Return-Path: <%s>\n" % sender.encode(), added)
        self.assertIn(b"Delivered-To: %s\n" % user.encode(), added)
        os.unlink(files[0])

    def assert_still_serving(self):
        """A normal delivery on a fresh connection works."""
        msg = b"Subject: still there\r\n\r\nyes\r\n"
        conn = self.connect()
        conn.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n")
        self.assertEqual([r.code for r in conn.replies(3)], [250, 250, 354])
        conn.send(data_block(msg))
        self.assertEqual(conn.reply().code, 250)
        self.assert_delivered("carol@example.test", msg, "s@example.test")


class PipelineTest(LmtpdTestCase):
    def make_unwritable(self, user):
        md = self.env.maildir(user)
        os.makedirs(os.path.dirname(md))
        os.chown(os.path.dirname(md), harness.VMAIL.pw_uid, harness.VMAIL.pw_gid)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(md, sub))
        # the Maildir is root's, and the daemon runs as vmail

    def test_replies_per_recipient_in_rcpt_order(self):
        self.make_unwritable("bob@example.test")
        msg = b"From: s@example.test\r\nSubject: pipelined\r\n\r\nhello\r\n.dot line\r\n"
        conn = self.connect()
        conn.send(b"MAIL FROM:<s@example.test> BODY=8BITMIME SIZE=100\r\n"
                  b"RCPT TO:<alice@example.test>\r\n"
                  b"RCPT TO:<nobody@example.test>\r\n"
                  b"RCPT TO:<bob@example.test>\r\n"
                  b"RCPT TO:<carol@example.test>\r\n"
                  b"DATA\r\n")
        r = conn.replies(6)
        self.assertEqual([x.code for x in r], [250, 250, 550, 250, 250, 354])
        self.assertEqual(r[2].enh, "5.1.1")
        conn.send(data_block(msg))
        r = conn.replies(3)  # one per accepted recipient, in RCPT order
        self.assertEqual([(x.code, x.enh) for x in r],
                         [(250, "2.0.0"), (451, "4.3.0"), (250, "2.0.0")])
        self.assertIn("<alice@example.test>", r[0].text)
        self.assertIn("<bob@example.test>", r[1].text)
        self.assertIn("<carol@example.test>", r[2].text)
        self.assert_delivered("alice@example.test", msg, "s@example.test")
        self.assert_delivered("carol@example.test", msg, "s@example.test")
        self.assertEqual(self.env.messages("bob@example.test"), [])

    def test_two_messages_pipelined_with_bdat(self):
        chunks = [b"Subject: chunked\r\n\r\n", b"first part\r\n", b"second part\r\n"]
        conn = self.connect()
        conn.send(b"MAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\n"
                  b"RCPT TO:<carol@example.test>\r\n" +
                  b"".join(b"BDAT %d%s\r\n%s" % (len(c), b" LAST" if i == len(chunks) - 1
                                                 else b"", c)
                           for i, c in enumerate(chunks)) +
                  b"MAIL FROM:<x@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
                  b"BDAT 0 LAST\r\n")
        r = conn.replies(3 + 2 + 2)  # MAIL RCPT RCPT, two chunks, LAST per rcpt
        self.assertEqual([x.code for x in r], [250] * 7)
        self.assertEqual(r[5].enh, "2.0.0")
        self.assertEqual([x.code for x in conn.replies(3)], [250, 250, 250])
        files = self.env.messages("alice@example.test")
        self.assertEqual(len(files), 2)
        self.assert_delivered("carol@example.test", b"".join(chunks))

    def test_bdat_last_without_recipients_gets_no_reply(self):
        # RFC 2033 4.3: zero replies; the NOOP behind it is answered next
        conn = self.connect()
        conn.send(b"MAIL FROM:<>\r\nRCPT TO:<nobody@example.test>\r\n"
                  b"BDAT 5 LAST\r\nhelloNOOP\r\n")
        self.assertEqual([x.code for x in conn.replies(3)], [250, 550, 250])
        self.assert_still_serving()

    def test_rset_and_noop_and_quit(self):
        conn = self.connect()
        conn.send(b"MAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nRSET\r\n"
                  b"DATA\r\nNOOP\r\nQUIT\r\n")
        r = conn.replies(6)
        self.assertEqual([x.code for x in r], [250, 250, 250, 503, 250, 221])
        self.assertTrue(conn.closed_by_server())
        self.assertEqual(self.env.messages("alice@example.test"), [])


class BadInputTest(LmtpdTestCase):
    max_message_size = "200k"

    def test_bare_lf_line_endings(self):
        msg = b"Subject: bare lf\n\nline one\nline two\n"
        conn = self.connect()
        conn.send(b"MAIL FROM:<>\nRCPT TO:<alice@example.test>\nDATA\n")
        self.assertEqual([x.code for x in conn.replies(3)], [250, 250, 354])
        conn.send(msg + b".\n")
        self.assertEqual(conn.reply().code, 250)
        self.assert_delivered("alice@example.test", msg)
        self.assert_still_serving()

    def test_nul_bytes_and_8bit_body(self):
        msg = (b"Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: text/plain; charset=latin1\r\n"
               b"\r\nnul:\x00:here\r\n8bit: \xe9t\xe9 \xff\xfe\r\n")
        conn = self.connect()
        conn.send(b"MAIL FROM:<> BODY=8BITMIME\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        self.assertEqual([x.code for x in conn.replies(3)], [250, 250, 354])
        conn.send(data_block(msg))
        self.assertEqual(conn.reply().code, 250)
        self.assert_delivered("alice@example.test", msg)
        # a NUL in a command is refused, the session goes on
        conn.send(b"MAIL FROM:<a\x00b@example.test>\r\nNOOP\r\n")
        r = conn.replies(2)
        self.assertEqual(r[0].code // 100, 5)
        self.assertEqual(r[1].code, 250)
        self.assert_still_serving()

    def test_one_megabyte_header_line(self):
        msg = b"X-Long: " + b"a" * (1024 * 1024) + b"\r\nSubject: long\r\n\r\nbody\r\n"
        conn = self.connect()
        conn.send(b"MAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        self.assertEqual([x.code for x in conn.replies(3)], [250, 250, 354])
        conn.send(data_block(msg))
        r = conn.reply()
        # over this server's 200k limit: refused as too big, not cut or crashed
        self.assertEqual((r.code, r.enh), (552, "5.3.4"))
        self.assertEqual(self.env.messages("alice@example.test"), [])
        self.assert_still_serving()

    def test_message_over_max_message_size(self):
        big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 250
        conn = self.connect()
        # announced in LHLO, checked at MAIL SIZE=, and at the end of DATA/BDAT
        conn.send(b"MAIL FROM:<> SIZE=%d\r\n" % len(big))
        r = conn.reply()
        self.assertEqual((r.code, r.enh), (552, "5.3.4"))
        conn.send(b"MAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\n"
                  b"RCPT TO:<carol@example.test>\r\nDATA\r\n")
        self.assertEqual([x.code for x in conn.replies(4)], [250, 250, 250, 354])
        conn.send(data_block(big) + b"NOOP\r\n")
        r = conn.replies(3)
        self.assertEqual([(x.code, x.enh) for x in r], [(552, "5.3.4")] * 2 + [(250, "2.0.0")])
        conn.send(b"MAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nBDAT %d LAST\r\n%s"
                  % (len(big), big))
        self.assertEqual([x.code for x in conn.replies(3)], [250, 250, 552])
        self.assertEqual(self.env.messages("alice@example.test"), [])
        self.assert_still_serving()

    def test_size_is_announced(self):
        conn = LmtpConn(self.env.lmtp_socket)
        self.addCleanup(conn.close)
        lhlo = conn.greet()
        for cap in ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "CHUNKING",
                    "SIZE %d" % (200 * 1024)):
            self.assertIn(cap, lhlo.lines)

    def test_unsafe_recipients_are_unknown_users(self):
        conn = self.connect()
        conn.send(b"MAIL FROM:<>\r\n")
        self.assertEqual(conn.reply().code, 250)
        for rcpt in (b'"../alice"@example.test', b'"../../etc/passwd"@example.test',
                     b"a/b@example.test", b'"alice/../bob"@example.test',
                     b'"/etc"@example.test', b"alice@../example.test"):
            conn.send(b"RCPT TO:<%s>\r\n" % rcpt)
            r = conn.reply()
            self.assertIn(r.code, (550, 501), rcpt)
            if r.code == 550:
                self.assertEqual(r.enh, "5.1.1", rcpt)
        # control characters: lib-smtp's command parser refuses the line
        # (500 5.5.2) before the userdb sees it; either way never a file name
        for rcpt in (b"ali\x01ce@example.test", b'"ali\x7fce"@example.test',
                     b"alice\x1b@example.test"):
            conn.send(b"RCPT TO:<%s>\r\n" % rcpt)
            r = conn.reply()
            self.assertEqual(r.code // 100, 5, rcpt)
        conn.send(b"DATA\r\n")
        self.assertEqual(conn.reply().code, 503)  # no valid recipient
        self.assertEqual(os.listdir(self.env.mail_root), [])
        self.assert_still_serving()

    def test_commands_out_of_order(self):
        conn = self.connect()
        conn.send(b"RCPT TO:<alice@example.test>\r\nDATA\r\nBDAT 3 LAST\r\nabc"
                  b"MAIL FROM:<>\r\nMAIL FROM:<>\r\nRSET\r\nLHLO again\r\n")
        r = conn.replies(7)
        self.assertEqual([x.code for x in r[:5]], [503, 503, 503, 250, 503])
        self.assertEqual([x.code for x in r[5:]], [250, 250])
        self.assert_still_serving()

    def test_garbage_commands(self):
        conn = self.connect()
        conn.send(b"HELLO\r\nXYZZY plugh\r\n\r\nMAIL\r\nRCPT TO:garbage\r\n" +
                  b"NOOP " + b"z" * 100000 + b"\r\nNOOP\r\n")
        r = conn.replies(7)
        self.assertEqual([x.code // 100 for x in r[:6]], [5] * 6)
        self.assertEqual(r[0].code, 500)
        self.assertEqual(r[1].code, 500)
        self.assertEqual(r[6].code, 250)
        self.assert_still_serving()


if __name__ == "__main__":
    harness.main()
