#!/usr/bin/env python3
"""The imap_sieve route end to end: Pigeonhole's imap_sieve (the mailsift
plugin not loaded) runs sieve-scripts/report-{spam,ham}.sieve from
contrib/dovecot/90-mailsift-imapsieve.conf, which pipe the message to
mailsift-spool-learn; the scenarios (learnroute.RouteTests) are the plugin's."""
import os

import harness
from learnroute import RouteTests, classes, imapsieve_conf, message, sievec


class ImapSieveTest(RouteTests, harness.TestCase):
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


if __name__ == "__main__":
    harness.main()
