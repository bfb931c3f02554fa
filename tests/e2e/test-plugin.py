#!/usr/bin/env python3
"""The Dovecot plugin end to end: a private Dovecot loads lib95_mailsift_plugin.so
from a private module dir, an IMAP client moves mail, and the training events
must appear in the spool, and be learned, exactly when the issue says
(DESIGN.md, "Learning"). The scenarios shared with the imap_sieve route are in
learnroute.RouteTests; the plugin's own settings are tested here."""
import imaplib
import os

import harness
from learnroute import (USER, Imap, LearnerRouteTests, RouteTests, classes, dovecot_log,
                        learnable, lf, message, parse_spool_file, spool_events, uidset)


class PluginTest(LearnerRouteTests, RouteTests, harness.TestCase):
    def start(self, users=(USER,), protocols="imap", quota=None, extra="", ms_keys=None,
              **settings):
        self.env.write_users(list(users))
        self.env.make_spool()
        self.env.write_ms_conf(**(ms_keys or {}))
        plugins = ""
        if quota is not None:
            plugins = "quota"
            settings.update(quota="maildir:User quota", quota_rule="*:storage=" + quota)
        conf = self.env.plugin_conf(mail_plugins=plugins, **settings) + extra
        self.port = self.env.start_dovecot(conf, protocols=protocols)
        return self.port

    def test_contrib_snippet_as_shipped(self):
        # contrib/dovecot/90-mailsift-plugin.conf with only its paths changed
        with open(os.path.join(harness.SRCDIR, "contrib", "dovecot",
                               "90-mailsift-plugin.conf")) as f:
            snippet = f.read()
        snippet = snippet.replace("/var/spool/mailsift", self.env.path("spool")).replace(
                "/var/run/mailsift/learner.sock", self.env.path("learner.sock"))
        self.env.write_users([USER])
        self.env.make_spool()
        conf = "mail_plugin_dir = %s\n%s" % (self.env.plugin_module_dir(), snippet)
        self.port = self.env.start_dovecot(conf)
        imap = self.client()
        uids = self.inbox_with(imap, [message(1)])
        imap.ok(imap.uid("MOVE", str(uids[0]), "Junk"))
        self.assertEqual(classes(self.env), [("spam", USER)])

    def move_into_junk(self, msgs):
        """One UID MOVE of msgs from INBOX into Junk; (the session, the name
        and the bytes of the one spool file it must have made)."""
        imap = self.client()
        uids = self.inbox_with(imap, msgs)
        imap.ok(imap.uid("MOVE", uidset(uids), "Junk"))
        names = self.env.spool_files("new")
        self.assertEqual(len(names), 1, names)
        with open(self.env.path("spool", "new", names[0]), "rb") as f:
            return imap, names[0], f.read()

    def test_learner_uid_move_of_fifty_is_one_batch_learned_once(self):
        self.start()
        msgs = learnable(50)
        # one manifest for the whole MOVE, its records in the order moved,
        # each a hard link to the Maildir file (format 3), no bytes copied
        _, name, data = self.move_into_junk(msgs)
        self.assertTrue(data.startswith(b"X-Mailsift-Spool: 3\n"), data[:100])
        lines = data.partition(b"\n\n")[2].split(b"\n")
        self.assertEqual(lines[-1], b"")
        self.assertEqual([line[:1] for line in lines[:-1]], [b"@"] * 50)
        self.assertEqual(len(self.env.spool_files("msg")), 50)
        cls, user, records = parse_spool_file(name, data, self.env.path("spool", "msg"))
        self.assertEqual((cls, user), ("spam", USER))
        self.assertEqual([lf(m) for m in records], msgs)
        self.assertEqual(self.env.spool_files("tmp"), [])
        self.start_learner()
        self.wait_learned()
        self.assertEqual(self.counts(), (50, 0))
        self.assertEqual(self.env.learnd_log().count("result=learned"), 50)
        self.assertEqual(self.env.spool_files("msg"), [])
        self.assertEqual(len(self.client().uids("Junk")), 50)  # Dovecot's names stay
        # a second pass counts nothing again
        self.assertEqual(self.env.learner_request("POKE"), "OK")
        self.assertEqual(self.env.learner_request("STATS").split()[:3],
                         ["OK", "learned_spam=50", "learned_ham=0"])

    def test_learner_up_gets_references_and_learns_renamed_files(self):
        listener = self.env.listen_as_learner()
        self.start()
        msgs = learnable(50)
        # one manifest naming the 50 files Dovecot's MOVE made in Junk:
        # nothing linked or copied during the command
        imap, _, data = self.move_into_junk(msgs)
        head, _, body = data.partition(b"\n\n")
        self.assertTrue(head.startswith(b"X-Mailsift-Spool: 4\n"), head)
        fields = dict(line.split(": ", 1) for line in head.decode().split("\n")[1:])
        self.assertEqual(fields["X-Mailsift-Maildir"],
                         os.path.join(self.env.mail_root, USER.split("@")[1], USER.split("@")[0],
                                      ".Junk"))
        refs = body.decode().split("\n")
        self.assertEqual(refs[-1], "")
        self.assertEqual([r[:5] for r in refs[:-1]], ["=new/"] * 50)
        self.assertEqual(self.env.spool_files("msg"), [])
        self.assertEqual([lf(m) for _, _, m in spool_events(self.env)], msgs)
        # reading Junk moves the files to cur/ with flags: a learner that
        # starts now still finds each one, and counts it once
        imap.select("Junk")
        imap.ok(imap.conn.uid("STORE", "1:*", "+FLAGS", "(\\Seen)"))
        imap.close()
        listener.close()
        os.unlink(self.env.path("learner.sock"))
        self.start_learner()
        self.wait_learned()
        self.assertEqual(self.counts(), (50, 0))
        self.assertEqual(self.env.spool_files("msg"), [])

    def test_learner_pins_files_while_redis_is_down(self):
        # The learner links the named files into msg/ at once, without
        # Redis: a message the user expunges before Redis is back is
        # still learned, once.
        self.start()
        self.env.start_learnd()
        imap = self.client()
        msgs = learnable(3)
        uids = self.inbox_with(imap, msgs)
        imap.ok(imap.uid("MOVE", uidset(uids), "Junk"))

        def pinned():
            names = self.env.spool_files("new")
            if len(names) != 1 or len(self.env.spool_files("msg")) != 3:
                return False
            with open(self.env.path("spool", "new", names[0]), "rb") as f:
                return f.read(20) == b"X-Mailsift-Spool: 3\n"
        harness.wait_for(pinned, 30, "the learner to pin the moved files")
        imap.select("Junk")
        imap.ok(imap.conn.uid("STORE", "1:*", "+FLAGS", "(\\Deleted)"))
        imap.ok(imap.conn.expunge())
        self.assertEqual(imap.uids("Junk"), [])
        self.env.start_redis()
        self.wait_learned()
        self.assertEqual(self.counts(), (3, 0))
        self.assertEqual(self.env.learnd_log().count("result=learned"), 3)

    def test_learner_linked_file_deleted_by_hand_is_skipped(self):
        self.start()
        imap = self.client()
        uids = self.inbox_with(imap, learnable(3))
        imap.ok(imap.uid("MOVE", uidset(uids), "Junk"))
        links = self.env.spool_files("msg")
        self.assertEqual(len(links), 3)
        os.unlink(self.env.path("spool", "msg", links[1]))
        self.start_learner()
        self.wait_learned()
        self.assertEqual(self.counts(), (2, 0))
        log = self.env.learnd_log()
        self.assertIn("msg/%s: missing" % links[1], log)
        self.assertEqual(self.env.spool_files("msg") + self.env.spool_files("bad"), [])

    def test_no_link_dir_copies_the_bytes(self):
        # a spool made by a learner from before format 3 has no msg/
        self.start()
        os.rmdir(self.env.path("spool", "msg"))
        imap = self.client()
        msgs = [message(n) for n in range(3)]
        uids = self.inbox_with(imap, msgs)
        imap.ok(imap.uid("MOVE", uidset(uids), "Junk"))
        names = self.env.spool_files("new")
        with open(self.env.path("spool", "new", names[0]), "rb") as f:
            self.assertTrue(f.read().startswith(b"X-Mailsift-Spool: 2\n"))
        self.assertEqual([lf(m) for _, _, m in spool_events(self.env)], msgs)

    def test_move_and_copy_back_are_a_batch_each(self):
        # into Junk is one spam batch; out of it one ham batch
        self.start()
        imap = self.client()
        uids = self.inbox_with(imap, [message(n) for n in range(3)])
        imap.ok(imap.uid("MOVE", uidset(uids), "Junk"))
        junk = imap.uids("Junk")
        imap.ok(imap.uid("COPY", uidset(junk), "INBOX"))
        names = self.env.spool_files("new")
        self.assertEqual(sorted(n.split(".")[0] for n in names), ["ham", "spam"])
        self.assertEqual(classes(self.env), [("ham", USER)] * 3 + [("spam", USER)] * 3)

    def test_configured_junk_name(self):
        self.start(mailsift_junk_mailbox="Spam, Junk E-mail")
        imap = self.client()
        imap.ok(imap.conn.create('"Junk E-mail"'))
        uids = self.inbox_with(imap, [message(1)])
        imap.ok(imap.uid("MOVE", str(uids[0]), '"Junk E-mail"'))
        self.assertEqual(classes(self.env), [("spam", USER)])

    def test_trash_anywhere_is_nothing(self):
        self.start()
        imap = self.client()
        imap.append("Trash", [message(1), message(2), message(3)])
        trash = imap.uids("Trash")
        imap.ok(imap.uid("MOVE", str(trash[0]), "INBOX"))
        imap.ok(imap.uid("MOVE", str(trash[1]), "Junk"))
        uids = imap.uids("INBOX")
        imap.ok(imap.uid("MOVE", uidset(uids), "Trash"))
        self.assertEqual(classes(self.env), [])

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

    def test_unwritable_spool_logs_and_moves(self):
        self.start(mailsift_spool_dir=self.env.path("no-such-spool"))
        imap = self.client()
        uids = self.inbox_with(imap, [message(1), message(2)])
        imap.ok(imap.uid("MOVE", uidset(uids), "Junk"))
        self.assertEqual(len(imap.uids("Junk")), 2)
        imap.close()  # the session's log lines are all written when it ends
        harness.wait_for(lambda: "Logged out" in dovecot_log(self.env), what="logout")
        log = dovecot_log(self.env)
        self.assertIn("mailsift: spool %s" % self.env.path("no-such-spool"), log)
        self.assertEqual(log.count("mailsift: spool"), 1, log)  # once per transaction

    def test_hung_learner_does_not_block_moves(self):
        # A learner socket that is listening but never accepts: the poke
        # must not wait (the client's timeout turns a hang into a failure).
        self.env.listen_as_learner(backlog=0)
        self.start()
        imap = self.client()
        imap.conn.sock.settimeout(60)
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
        self.assertEqual([lf(m) for _, _, m in spool_events(self.env)], [small])
        harness.wait_for(lambda: "over mailsift_max_size" in dovecot_log(self.env),
                         what="the log line of the skipped message")

    def test_bad_setting_is_a_login_error_naming_it(self):
        self.start(mailsift_max_size="banana")
        with self.assertRaises((imaplib.IMAP4.error, OSError, EOFError)):
            imap = Imap(self.port)
            try:
                imap.select("INBOX")
            finally:
                imap.close()
        # the log process writes it a moment after the client saw the end
        harness.wait_for(lambda: "mailsift_max_size" in dovecot_log(self.env),
                         what="the log line naming the setting")


if __name__ == "__main__":
    harness.main()
