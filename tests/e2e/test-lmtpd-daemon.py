#!/usr/bin/env python3
"""mailsift-lmtpd as a daemon: detaching with a pid file, startup errors that
say what is wrong, the connection limit, the idle timeout, TCP, privileges."""
import os
import signal
import socket
import subprocess

import harness
from lmtpclient import LmtpConn, data_block

USER = "alice@example.test"


class DaemonTest(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.env.write_users([USER])

    def run_lmtpd(self, *args):
        return subprocess.run([harness.binary("mailsift-lmtpd")] + list(args),
                              capture_output=True, text=True, timeout=30)

    def deliver(self, conn):
        msg = b"Subject: hi\r\n\r\nhello\r\n"
        conn.send(b"MAIL FROM:<>\r\nRCPT TO:<%s>\r\nDATA\r\n" % USER.encode())
        self.assertEqual([r.code for r in conn.replies(3)], [250, 250, 354])
        conn.send(data_block(msg))
        return conn.reply()

    def test_detaches_writes_pid_file_and_stops_on_sigterm(self):
        conf = self.env.write_ms_conf()
        out = self.run_lmtpd("-c", conf)
        self.assertEqual(out.returncode, 0, out.stderr)
        pid = harness.read_pidfile(self.env.path("mailsift.pid"))
        self.env.on_cleanup(lambda: harness.stop_pid(pid))
        self.assertTrue(harness.pid_alive(pid))
        with open("/proc/%d/status" % pid) as f:
            uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
        self.assertEqual(set(uids), {str(harness.VMAIL.pw_uid)})  # dropped root for good
        harness.wait_for(lambda: harness.can_connect(self.env.path("lmtp.sock")))
        conn = LmtpConn(self.env.path("lmtp.sock"))
        self.addCleanup(conn.close)
        conn.greet()
        self.assertEqual(self.deliver(conn).code, 250)
        conn.close()
        os.kill(pid, signal.SIGTERM)
        harness.wait_for(lambda: not harness.pid_alive(pid), what="lmtpd to exit")

    def test_startup_errors_name_the_problem(self):
        conf = self.env.write_ms_conf(max_connections="many")
        out = self.run_lmtpd("-F", "-c", conf)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(conf + ":", out.stderr)
        self.assertIn("max_connections", out.stderr)
        out = self.run_lmtpd("-F", "-c", self.env.path("missing.conf"))
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("missing.conf", out.stderr)
        out = self.run_lmtpd("-F", "-c", self.env.write_ms_conf(lmtp_listen="localhost"))
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("localhost", out.stderr)
        out = self.run_lmtpd("-x")
        self.assertEqual(out.returncode, 64)
        self.assertIn("usage", out.stderr)

    def test_socket_in_use_is_refused(self):
        self.env.start_lmtpd()
        out = self.run_lmtpd("-F", "-c", self.env.ms_conf)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("another process", out.stderr)
        self.assertTrue(harness.can_connect(self.env.lmtp_socket))  # the first one lives on

    def test_socket_mode_and_owner(self):
        self.env.start_lmtpd(lmtp_socket_mode="0660", lmtp_socket_group="mail")
        st = os.stat(self.env.lmtp_socket)
        self.assertEqual(st.st_mode & 0o7777, 0o660)
        self.assertEqual(st.st_uid, harness.VMAIL.pw_uid)
        self.assertEqual(st.st_gid, __import__("grp").getgrnam("mail").gr_gid)

    def test_connection_limit(self):
        self.env.start_lmtpd(max_connections=2)
        first = LmtpConn(self.env.lmtp_socket)
        second = LmtpConn(self.env.lmtp_socket)
        for c in (first, second):
            self.addCleanup(c.close)
            c.greet()
        third = LmtpConn(self.env.lmtp_socket)
        self.addCleanup(third.close)
        r = third.reply()
        self.assertEqual((r.code, r.enh), (421, "4.3.2"))
        self.assertTrue(third.closed_by_server())
        first.send(b"QUIT\r\n")
        self.assertEqual(first.reply().code, 221)
        self.assertTrue(first.closed_by_server())
        # a place is free again (once the server has seen the QUIT through)
        harness.wait_for(lambda: self._greets(), what="a free connection slot")
        self.assertEqual(self.deliver(second).code, 250)

    def _greets(self):
        c = LmtpConn(self.env.lmtp_socket)
        try:
            return c.reply().code == 220
        finally:
            c.close()

    def test_idle_client_is_disconnected(self):
        self.env.start_lmtpd(idle_timeout_secs=1)
        conn = LmtpConn(self.env.lmtp_socket)
        self.addCleanup(conn.close)
        conn.greet()
        conn.send(b"MAIL FROM:<>\r\n")
        self.assertEqual(conn.reply().code, 250)
        r = conn.reply()  # nothing more is sent: the server gives up
        self.assertEqual((r.code, r.enh), (421, "4.4.2"))
        self.assertTrue(conn.closed_by_server())

    def test_tcp_listener(self):
        port = harness.free_port()
        self.env.start_lmtpd(lmtp_listen="127.0.0.1:%d" % port)
        conn = LmtpConn.__new__(LmtpConn)
        conn.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        conn.buf = b""
        self.addCleanup(conn.close)
        conn.greet()
        self.assertEqual(self.deliver(conn).code, 250)
        self.assertEqual(len(self.env.messages(USER)), 1)


if __name__ == "__main__":
    harness.main()
