#!/usr/bin/env python3
"""The Dovecot plugin end to end: a private Dovecot loads lib95_mailsift_plugin.so
from a private module dir, an IMAP client moves mail, and the training events
must appear in the spool exactly when the issue says (DESIGN.md, "Learning")."""
import imaplib
import smtplib
import socket

import harness
from learnroute import (OTHER, USER, Imap, classes, crlf, dovecot_log, lf, message, spool_events,
                        uidset)


class PluginTest(harness.TestCase):
    def start(self, users=(USER,), protocols="imap", mail_plugins="", extra="", **settings):
        self.env.write_users(list(users))
        self.env.make_spool()
        conf = self.env.plugin_conf(mail_plugins=mail_plugins, **settings) + extra
        self.port = self.env.start_dovecot(conf, protocols=protocols)
        return self.port

    def client(self, user=USER):
        imap = Imap(self.port, user)
        self.addCleanup(imap.close)
        return imap

    def inbox_with(self, imap, msgs):
        imap.append("INBOX", msgs)
        return imap.uids("INBOX")

    # --- into Junk: spam
    def test_move_one_into_junk_is_one_spam_event(self):
        self.start()
        imap = self.client()
        msg = message(1)
        uids = self.inbox_with(imap, [msg, message(2)])
        imap.ok(imap.uid("MOVE", str(uids[0]), "Junk"))
        events = spool_events(self.env)
        self.assertEqual([(cls, user) for cls, user, _ in events], [("spam", USER)])
        self.assertEqual(lf(events[0][2]), msg)
        self.assertEqual(self.env.spool_files("tmp"), [])
        self.assertEqual(imap.uids("INBOX"), [uids[1]])
        self.assertEqual(len(imap.uids("Junk")), 1)

    def test_uid_move_of_fifty(self):
        self.start()
        imap = self.client()
        msgs = [message(n) for n in range(50)]
        uids = self.inbox_with(imap, msgs)
        imap.ok(imap.uid("MOVE", uidset(uids), "Junk"))
        events = spool_events(self.env)
        self.assertEqual(classes(self.env), [("spam", USER)] * 50)
        self.assertEqual(sorted(lf(m) for _, _, m in events), sorted(msgs))
        self.assertEqual(len(imap.uids("Junk")), 50)

    def test_copy_into_junk(self):
        self.start()
        imap = self.client()
        uids = self.inbox_with(imap, [message(1)])
        imap.ok(imap.uid("COPY", str(uids[0]), "Junk"))
        self.assertEqual(classes(self.env), [("spam", USER)])
        self.assertEqual(imap.uids("INBOX"), uids)

    def test_configured_junk_name(self):
        self.start(mailsift_junk_mailbox="Spam, Junk E-mail")
        imap = self.client()
        imap.ok(imap.conn.create("\"Junk E-mail\""))
        uids = self.inbox_with(imap, [message(1)])
        imap.ok(imap.uid("MOVE", str(uids[0]), "\"Junk E-mail\""))
        self.assertEqual(classes(self.env), [("spam", USER)])

    # --- out of Junk: ham, unless to Trash
    def test_move_out_of_junk_is_ham(self):
        self.start()
        imap = self.client()
        msg = message(1)
        uids = self.inbox_with(imap, [msg])
        imap.ok(imap.uid("MOVE", str(uids[0]), "Junk"))
        junk = imap.uids("Junk")
        imap.ok(imap.uid("MOVE", str(junk[0]), "INBOX"))
        self.assertEqual(classes(self.env), [("ham", USER), ("spam", USER)])
        # the same bytes both times, so the store can find and unlearn it
        self.assertEqual({lf(m) for _, _, m in spool_events(self.env)}, {msg})

    def test_junk_to_trash_and_trash_anywhere_are_nothing(self):
        self.start()
        imap = self.client()
        imap.append("Junk", [message(1), message(2)])
        junk = imap.uids("Junk")
        imap.ok(imap.uid("MOVE", uidset(junk), "Trash"))
        trash = imap.uids("Trash")
        imap.ok(imap.uid("MOVE", str(trash[0]), "INBOX"))
        imap.ok(imap.uid("MOVE", str(trash[1]), "Junk"))
        uids = imap.uids("INBOX")
        imap.ok(imap.uid("MOVE", uidset(uids), "Trash"))
        self.assertEqual(classes(self.env), [])

    # --- APPEND into Junk: the setting decides
    def test_append_into_junk_not_learned_by_default(self):
        self.start()
        self.client().append("Junk", [message(1)])
        self.assertEqual(classes(self.env), [])

    def test_append_into_junk_learned_when_set(self):
        self.start(mailsift_learn_append="yes")
        imap = self.client()
        msg = message(1)
        imap.append("Junk", [msg])
        imap.append("INBOX", [message(2)])
        events = spool_events(self.env)
        self.assertEqual([(cls, user) for cls, user, _ in events], [("spam", USER)])
        self.assertEqual(lf(events[0][2]), msg)

    # --- deliveries are not the user's verdict
    def test_delivery_into_junk_is_nothing(self):
        self.start(protocols="imap lmtp", extra="lmtp_save_to_detail_mailbox = yes\n")
        lmtp = smtplib.LMTP(self.env.path("dovecot", "run", "lmtp"))
        lmtp.sendmail("sender@example.net", ["test+Junk@example.test"], crlf(message(1)))
        lmtp.quit()
        imap = self.client()
        self.assertEqual(len(imap.uids("Junk")), 1)
        self.assertEqual(classes(self.env), [])

    # --- transactions: only committed copies are published
    def test_failed_copy_leaves_no_spool_file(self):
        # Quota (loaded beside the plugin, checked after our copy hook ran)
        # refuses the COPY of all three (each ~2.2 KB, 3 fit, 6 do not) after the
        # first ones were written to tmp/: the whole COPY rolls back.
        self.start(mail_plugins="quota", quota="maildir:User quota", quota_rule="*:storage=10K")
        imap = self.client()
        uids = self.inbox_with(imap, [message(n, size=2000) for n in range(3)])
        typ, data = imap.uid("COPY", uidset(uids), "Junk")
        self.assertEqual(typ, "NO", data)
        self.assertIn(b"OVERQUOTA", data[0])
        self.assertEqual(imap.uids("Junk"), [])
        self.assertEqual(self.env.spool_files("new"), [])
        self.assertEqual(self.env.spool_files("tmp"), [])
        # the same plugin stack learns a copy that fits
        imap.select("INBOX")
        imap.ok(imap.uid("COPY", str(uids[0]), "Junk"))
        self.assertEqual(classes(self.env), [("spam", USER)])

    def test_copy_into_missing_mailbox_leaves_no_spool_file(self):
        self.start()
        imap = self.client()
        uids = self.inbox_with(imap, [message(1)])
        typ, data = imap.uid("MOVE", str(uids[0]), "NoSuchBox")
        self.assertEqual(typ, "NO", data)
        self.assertEqual(self.env.spool_files("new") + self.env.spool_files("tmp"), [])

    # --- learning never costs the user a move
    def test_unwritable_spool_logs_and_moves(self):
        self.start(mailsift_spool_dir=self.env.path("no-such-spool"))
        imap = self.client()
        uids = self.inbox_with(imap, [message(1), message(2)])
        imap.ok(imap.uid("MOVE", uidset(uids), "Junk"))
        self.assertEqual(len(imap.uids("Junk")), 2)
        harness.wait_for(lambda: "mailsift: spool" in dovecot_log(self.env),
                         what="the spool error in the log")
        imap.close()  # the session's log lines are all written when it ends
        harness.wait_for(lambda: "Logged out" in dovecot_log(self.env), what="logout")
        log = dovecot_log(self.env)
        self.assertIn("mailsift: spool %s" % self.env.path("no-such-spool"), log)
        self.assertEqual(log.count("mailsift: spool"), 1, log)  # once per transaction

    def test_hung_learner_does_not_block_moves(self):
        # A learner socket that is listening but never accepts: the poke
        # must not wait (the client's timeout turns a hang into a failure).
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(self.env.path("learner.sock"))
        listener.listen(0)
        self.addCleanup(listener.close)
        self.start()
        imap = Imap(self.port)
        imap.conn.sock.settimeout(60)
        self.addCleanup(imap.close)
        uids = self.inbox_with(imap, [message(n) for n in range(5)])
        for uid in uids:
            imap.ok(imap.uid("MOVE", str(uid), "Junk"))
        self.assertEqual(classes(self.env), [("spam", USER)] * 5)

    def test_message_over_max_size_is_skipped_with_a_log_line(self):
        self.start(mailsift_max_size="10k")
        imap = self.client()
        small, big = message(1), message(2, size=20000)
        uids = self.inbox_with(imap, [small, big])
        imap.ok(imap.uid("MOVE", uidset(uids), "Junk"))
        events = spool_events(self.env)
        self.assertEqual([lf(m) for _, _, m in events], [small])
        harness.wait_for(lambda: "over mailsift_max_size" in dovecot_log(self.env),
                         what="the log line of the skipped message")

    def test_bad_setting_is_a_login_error_naming_it(self):
        self.start(mailsift_max_size="banana")
        with self.assertRaises((imaplib.IMAP4.error, OSError, EOFError)):
            imap = Imap(self.port)
            imap.select("INBOX")
        # the log process writes it a moment after the client saw the end
        harness.wait_for(lambda: "mailsift_max_size" in dovecot_log(self.env),
                         what="the log line naming the setting")

    def test_two_users_each_their_own_events(self):
        self.start(users=(USER, OTHER))
        a, b = self.client(USER), self.client(OTHER)
        ua = self.inbox_with(a, [message(1), message(2)])
        ub = self.inbox_with(b, [message(3)])
        a.ok(a.uid("MOVE", uidset(ua), "Junk"))
        b.ok(b.uid("MOVE", uidset(ub), "Junk"))
        self.assertEqual(classes(self.env), [("spam", OTHER), ("spam", USER), ("spam", USER)])


if __name__ == "__main__":
    harness.main()
