#!/usr/bin/env python3
"""Faults around mailsift-lmtpd: a full disk, a client that vanishes, a
daemon killed mid-delivery or asked to stop mid-session. Mail is never half
delivered and never acknowledged without being on disk (issue 2, test 4)."""
import os
import signal
import subprocess
import time

import harness
from lmtpclient import LmtpConn, data_block

USERS = ["alice@example.test", "bob@example.test"]


def big_message(size):
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
    return b"Subject: big\r\n\r\n" + line * (size // len(line))


class FaultTest(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.env.write_users(USERS)

    def connect(self):
        conn = LmtpConn(self.env.lmtp_socket)
        self.addCleanup(conn.close)
        self.assertEqual(conn.greet().code, 250)
        return conn

    def begin_data(self, conn, rcpt="alice@example.test"):
        conn.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % rcpt.encode())
        self.assertEqual([r.code for r in conn.replies(3)], [250, 250, 354])

    def deliver(self, msg, rcpt="alice@example.test"):
        conn = self.connect()
        self.begin_data(conn, rcpt)
        conn.send(data_block(msg))
        return conn.reply()

    def stored_bodies(self, user):
        bodies = []
        for path in self.env.messages(user):
            with open(path, "rb") as f:
                bodies.append(f.read())
        return bodies

    def test_full_filesystem_is_452_and_leaves_nothing_in_new(self):
        root = self.env.mail_root
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755,uid=%d,gid=%d"
                        % (harness.VMAIL.pw_uid, harness.VMAIL.pw_gid), "tmpfs", root],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", root])
        self.env.start_lmtpd()
        r = self.deliver(big_message(1024 * 1024))
        self.assertEqual((r.code, r.enh), (452, "4.2.2"))
        self.assertEqual(self.env.messages("alice@example.test"), [])
        # the space a failed delivery took is given back: small mail still fits
        small = b"Subject: small\r\n\r\nfits\r\n"
        self.assertEqual(self.deliver(small).code, 250)
        self.assertEqual(len(self.env.messages("alice@example.test")), 1)

    def test_client_disconnecting_mid_data_leaves_nothing(self):
        self.env.start_lmtpd()
        msg = big_message(300 * 1024)
        conn = self.connect()
        self.begin_data(conn)
        conn.send(data_block(msg)[:len(msg) // 2])
        conn.close()
        conn = self.connect()  # and mid-BDAT
        conn.send(b"MAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nBDAT 1000 LAST\r\nshort")
        self.assertEqual([r.code for r in conn.replies(2)], [250, 250])
        conn.close()
        after = b"Subject: after\r\n\r\nthe only one\r\n"
        self.assertEqual(self.deliver(after).code, 250)
        bodies = self.stored_bodies("alice@example.test")
        self.assertEqual(len(bodies), 1)
        self.assertTrue(bodies[0].endswith(after.replace(b"\r\n", b"\n")))

    def test_sigkill_during_delivery_never_leaves_a_partial_file(self):
        msg = big_message(30 * 1024 * 1024)
        expected = msg.replace(b"\r\n", b"\n")
        tmp = os.path.join(self.env.maildir("alice@example.test"), "tmp")
        killed_mid_write = 0
        for attempt in range(3):
            proc = self.env.start_lmtpd()
            conn = self.connect()
            self.begin_data(conn)
            conn.send(data_block(msg))
            # the moment a file exists in tmp/, the daemon is writing it
            while proc.poll() is None:
                if os.path.isdir(tmp) and os.listdir(tmp):
                    os.kill(proc.pid, signal.SIGKILL)
                    killed_mid_write += 1
                    break
                if self.env.messages("alice@example.test"):
                    os.kill(proc.pid, signal.SIGKILL)  # too late: finished
                    break
                time.sleep(0.0005)
            proc.wait(10)
            conn.close()
            for body in self.stored_bodies("alice@example.test"):
                self.assertTrue(body.endswith(expected), "partial message in new/")
            for path in self.env.messages("alice@example.test"):
                os.unlink(path)
            if killed_mid_write:
                break
        print("killed while a file was in tmp/: %d of %d attempts"
              % (killed_mid_write, attempt + 1))

    def test_sigterm_finishes_the_delivery_in_flight(self):
        proc = self.env.start_lmtpd()
        msg = b"Subject: in flight\r\n\r\n" + b"line\r\n" * 1000
        busy = self.connect()
        self.begin_data(busy)
        block = data_block(msg)
        busy.send(block[:len(block) // 2])
        idle = self.connect()
        os.kill(proc.pid, signal.SIGTERM)
        # it stops accepting at once ...
        harness.wait_for(lambda: not harness.can_connect(self.env.lmtp_socket),
                         what="the listener to close")
        r = idle.reply()  # ... sends idle clients away ...
        self.assertEqual((r.code, r.enh), (421, "4.3.2"))
        busy.send(block[len(block) // 2:])  # ... and finishes what was in progress
        r = busy.reply()
        self.assertEqual((r.code, r.enh), (250, "2.0.0"))
        self.assertEqual(busy.reply().code, 421)
        self.assertEqual(proc.wait(30), 0)
        bodies = self.stored_bodies("alice@example.test")
        self.assertEqual(len(bodies), 1)
        self.assertTrue(bodies[0].endswith(msg.replace(b"\r\n", b"\n")))


if __name__ == "__main__":
    harness.main()
