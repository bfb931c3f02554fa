#!/usr/bin/env python3
"""The imap_sieve route end to end: Pigeonhole's imap_sieve (the mailsift
plugin not loaded) runs sieve-scripts/report-{spam,ham}.sieve, which pipe the
message to mailsift-spool-learn; the training events must match the plugin's."""
import os
import smtplib

import harness
from learnroute import (OTHER, USER, Imap, classes, crlf, imapsieve_conf, message, sievec,
                        spool_events, uidset)


class ImapSieveTest(harness.TestCase):
    def start(self, users=(USER,), protocols="imap", extra="", before=""):
        """before: config that must precede the snippet (its protocol imap
        { mail_plugins = $mail_plugins ... } expands $mail_plugins there)."""
        self.env.write_users(list(users))
        self.env.make_spool()
        self.env.write_ms_conf()
        conf = before + imapsieve_conf(self.env) + extra
        self.port = self.env.start_dovecot(conf, protocols=protocols)
        # as the snippet tells admins: compile the scripts once
        for script in ("report-spam.sieve", "report-ham.sieve"):
            result = sievec(self.env, script)
            self.assertEqual(result.returncode, 0, script + ": " + result.stderr)
        return self.port

    def client(self, user=USER):
        imap = Imap(self.port, user)
        self.addCleanup(imap.close)
        return imap

    def inbox_with(self, imap, msgs):
        imap.append("INBOX", msgs)
        return imap.uids("INBOX")

    def test_scripts_compile_with_sievec(self):
        self.start()
        for script in ("report-spam.svbin", "report-ham.svbin"):
            self.assertTrue(os.path.exists(self.env.path("sieve", script)), script)

    def test_broken_script_is_refused_by_sievec(self):
        # the compile check above can fail: a script that requires what the
        # config does not enable is an error
        self.start()
        with open(self.env.path("sieve", "broken.sieve"), "w") as f:
            f.write('require ["vnd.dovecot.nosuch"];\nkeep;\n')
        self.assertNotEqual(sievec(self.env, "broken.sieve").returncode, 0)

    def test_move_one_into_junk_is_one_spam_event(self):
        self.start()
        imap = self.client()
        msg = message(1)
        uids = self.inbox_with(imap, [msg, message(2)])
        imap.ok(imap.uid("MOVE", str(uids[0]), "Junk"))
        events = spool_events(self.env)
        self.assertEqual([(cls, user) for cls, user, _ in events], [("spam", USER)])
        self.assertEqual(events[0][2], crlf(msg))
        self.assertEqual(self.env.spool_files("tmp"), [])

    def test_uid_move_of_fifty(self):
        self.start()
        imap = self.client()
        msgs = [message(n) for n in range(50)]
        uids = self.inbox_with(imap, msgs)
        imap.ok(imap.uid("MOVE", uidset(uids), "Junk"))
        self.assertEqual(classes(self.env), [("spam", USER)] * 50)
        self.assertEqual(sorted(m for _, _, m in spool_events(self.env)),
                         sorted(crlf(m) for m in msgs))

    def test_copy_into_junk(self):
        self.start()
        imap = self.client()
        uids = self.inbox_with(imap, [message(1)])
        imap.ok(imap.uid("COPY", str(uids[0]), "Junk"))
        self.assertEqual(classes(self.env), [("spam", USER)])

    def test_move_out_of_junk_is_ham(self):
        self.start()
        imap = self.client()
        msg = message(1)
        uids = self.inbox_with(imap, [msg])
        imap.ok(imap.uid("MOVE", str(uids[0]), "Junk"))
        junk = imap.uids("Junk")
        imap.ok(imap.uid("MOVE", str(junk[0]), "INBOX"))
        self.assertEqual(classes(self.env), [("ham", USER), ("spam", USER)])
        self.assertEqual({m for _, _, m in spool_events(self.env)}, {crlf(msg)})

    def test_junk_to_trash_is_nothing(self):
        self.start()
        imap = self.client()
        imap.append("Junk", [message(1), message(2)])
        junk = imap.uids("Junk")
        imap.ok(imap.uid("MOVE", uidset(junk), "Trash"))
        self.assertEqual(len(imap.uids("Trash")), 2)
        self.assertEqual(classes(self.env), [])

    def test_append_into_junk_is_nothing(self):
        # imapsieve_mailbox1_causes = COPY: APPEND is not a report here
        self.start()
        self.client().append("Junk", [message(1)])
        self.assertEqual(classes(self.env), [])

    def test_delivery_into_junk_is_nothing(self):
        self.start(protocols="imap lmtp", extra="lmtp_save_to_detail_mailbox = yes\n")
        lmtp = smtplib.LMTP(self.env.path("dovecot", "run", "lmtp"))
        lmtp.sendmail("sender@example.net", ["test+Junk@example.test"], crlf(message(1)))
        lmtp.quit()
        self.assertEqual(len(self.client().uids("Junk")), 1)
        self.assertEqual(classes(self.env), [])

    def test_failed_copy_leaves_no_spool_file(self):
        self.start(before="mail_plugins = $mail_plugins quota\nplugin {\n"
                   "  quota = maildir:User quota\n  quota_rule = *:storage=10K\n}\n")
        imap = self.client()
        uids = self.inbox_with(imap, [message(n, size=2000) for n in range(3)])
        typ, data = imap.uid("COPY", uidset(uids), "Junk")
        self.assertEqual(typ, "NO", data)
        self.assertEqual(self.env.spool_files("new") + self.env.spool_files("tmp"), [])

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
