#!/usr/bin/env python3
"""The imap_sieve route end to end: Pigeonhole's imap_sieve (the mailsift
plugin not loaded) runs sieve-scripts/report-{spam,ham}.sieve from
contrib/dovecot/90-mailsift-imapsieve.conf, which pipe the message to
mailsift-spool-learn; the scenarios (learnroute.RouteTests) are the plugin's."""
import os
import subprocess

import harness
from learnroute import (USER, LearnerRouteTests, RouteTests, classes, dovecot_log, imapsieve_conf,
                        lf, message, sievec, spool_events, uidset)


class ImapSieveTest(LearnerRouteTests, RouteTests, harness.TestCase):
    def start(self, users=("test@example.test",), protocols="imap", quota=None, extra="",
              ms_keys=None):
        self.env.write_users(list(users))
        self.env.make_spool()
        self.env.write_ms_conf(**(ms_keys or {}))
        before = ""
        if quota is not None:
            # before the snippet: its protocol imap { mail_plugins =
            # $mail_plugins imap_sieve } expands $mail_plugins there
            before = ("mail_plugins = $mail_plugins quota\nplugin {\n"
                      "  quota = maildir:User quota\n  quota_rule = *:storage=%s\n}\n" % quota)
        conf = before + imapsieve_conf(self.env) + extra
        self.port = self.env.start_dovecot(conf, protocols=protocols)
        # as the snippet tells admins: compile the scripts once
        for script in ("report-spam.sieve", "report-ham.sieve"):
            result = sievec(self.env, script)
            self.assertEqual(result.returncode, 0, script + ": " + result.stderr)
        return self.port

    def test_scripts_compile_with_sievec(self):
        self.start()
        for script in ("report-spam.svbin", "report-ham.svbin"):
            self.assertTrue(os.path.exists(self.env.path("sieve", script)), script)

    def test_broken_script_is_refused_by_sievec(self):
        # the compile check can fail: a script that requires what the
        # config does not enable is an error
        self.start()
        with open(self.env.path("sieve", "broken.sieve"), "w") as f:
            f.write('require ["vnd.dovecot.nosuch"];\nkeep;\n')
        self.assertNotEqual(sievec(self.env, "broken.sieve").returncode, 0)

    def test_append_into_junk_is_nothing(self):
        # imapsieve_mailbox1_causes = COPY: APPEND is not a report here
        self.start()
        self.client().append("Junk", [message(1)])
        self.assertEqual(classes(self.env), [])


    def test_unwritable_spool_fails_the_pipe_not_the_move(self):
        self.start(ms_keys={"spool_dir": self.env.path("no-such-spool")})
        imap = self.client()
        uids = self.inbox_with(imap, [message(1), message(2)])
        imap.ok(imap.uid("MOVE", uidset(uids), "Junk"))
        self.assertEqual(len(imap.uids("Junk")), 2)
        self.assertEqual(classes(self.env), [])
        harness.wait_for(lambda: "no-such-spool" in dovecot_log(self.env),
                         what="the helper's error in Dovecot's log")


class SpoolLearnHelperTest(harness.TestCase):
    """mailsift-spool-learn on its own: what it writes, and its errors."""

    def run_helper(self, *args, stdin=b""):
        helper = os.path.join(harness.BUILDDIR, "sieve-scripts", "mailsift-spool-learn")
        return subprocess.run([helper] + list(args), input=stdin, capture_output=True)

    def setUp(self):
        super().setUp()
        self.env.make_spool()
        self.conf = self.env.write_ms_conf()

    def test_writes_one_event(self):
        msg = message(1)
        result = self.run_helper("-c", self.conf, "ham", USER, stdin=msg)
        self.assertEqual(result.returncode, 0, result.stderr)
        events = spool_events(self.env)
        self.assertEqual([(cls, user) for cls, user, _ in events], [("ham", USER)])
        self.assertEqual(lf(events[0][2]), msg)

    def test_user_from_environment(self):
        env = dict(os.environ, USER=USER)
        helper = os.path.join(harness.BUILDDIR, "sieve-scripts", "mailsift-spool-learn")
        result = subprocess.run([helper, "-c", self.conf, "spam"], input=message(1), env=env,
                                capture_output=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(classes(self.env), [("spam", USER)])

    def test_too_big_is_skipped_not_an_error(self):
        result = self.run_helper("-c", self.conf, "-s", "1k", "spam", USER,
                                 stdin=message(1, size=5000))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"not learned", result.stderr)
        self.assertEqual(self.env.spool_files("new") + self.env.spool_files("tmp"), [])

    def test_bad_input(self):
        cases = [
            (("-c", self.conf, "eggs", USER), 64),          # unknown class
            (("-c", self.conf), 64),                        # no class
            (("-c", self.conf, "-s", "lots", "spam", USER), 64),
            (("-c", self.env.path("missing.conf"), "spam", USER), 78),
            (("-c", self.conf, "spam", "bad\x01user"), 75),  # the spool refuses it
        ]
        for args, code in cases:
            result = self.run_helper(*args, stdin=message(1))
            self.assertEqual(result.returncode, code, (args, result.stderr))
            self.assertTrue(result.stderr.startswith(b"mailsift-spool-learn") or
                            result.stderr.startswith(b"usage:"), result.stderr)
        self.assertEqual(self.env.spool_files("new") + self.env.spool_files("tmp"), [])


if __name__ == "__main__":
    harness.main()
