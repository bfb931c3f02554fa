"""What the two learning routes (the Dovecot plugin, imap_sieve + pipe) share
in their end-to-end tests: an IMAP client, test messages, and reading the
training events they leave in the spool."""
import imaplib
import os
import shutil
import subprocess

import harness

USER = "test@example.test"
OTHER = "other@example.test"


def message(n, size=0):
    """A distinct small message (LF line endings: IMAP clients send CRLF,
    the test compares what the spool got with the CRLF form)."""
    body = "".join("filler line %d of message %d\n" % (i, n) for i in range(size // 30))
    return ("From: sender%d@example.net\nTo: %s\nSubject: message %d\n"
            "Message-ID: <m%d@example.net>\n\nbody of message %d\n%s" % (n, USER, n, n, n, body)
            ).encode()


def lf(msg):
    """The message as a Maildir stores it (and the plugin spools it)."""
    return msg.replace(b"\r\n", b"\n")


def crlf(msg):
    return msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class Imap:
    """A logged-in imaplib client that fails the test on any NO/BAD."""

    def __init__(self, port, user=USER):
        self.conn = imaplib.IMAP4("127.0.0.1", port)
        self.conn.login(user, "secret")

    def ok(self, result):
        typ, data = result
        if typ != "OK":
            raise AssertionError("IMAP %s: %r" % (typ, data))
        return data

    def append(self, box, msgs):
        for m in msgs:
            self.ok(self.conn.append(box, None, None, crlf(m)))

    def select(self, box):
        return int(self.ok(self.conn.select(box))[0])

    def uids(self, box):
        self.select(box)
        data = self.ok(self.conn.uid("SEARCH", None, "ALL"))
        return [int(u) for u in data[0].split()]

    def uid(self, command, uidset, dest):
        """UID COPY/MOVE; returns (typ, data) so tests can expect a NO."""
        return self.conn.uid(command, uidset, dest)

    def close(self):
        try:
            self.conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def uidset(uids):
    return ",".join(str(u) for u in uids)


def spool_events(env):
    """[(class, user, message bytes)] of the published spool files."""
    events = []
    for name in env.spool_files("new"):
        with open(env.path("spool", "new", name), "rb") as f:
            data = f.read()
        head, sep, msg = data.partition(b"\n\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\n") if ": " in line)
        cls, user = fields.get("X-Mailsift-Class"), fields.get("X-Mailsift-User")
        if not sep or "X-Mailsift-Spool" not in fields or cls is None or user is None:
            raise AssertionError("spool file %s has no mailsift header: %r" % (name, data[:200]))
        if not name.startswith(cls + "."):
            raise AssertionError("spool file %s carries class %s" % (name, cls))
        events.append((cls, user, msg))
    return events


def classes(env):
    """Published events as a sorted list of (class, user)."""
    return sorted((cls, user) for cls, user, _ in spool_events(env))


def dovecot_log(env):
    return harness.read_text(env.path("dovecot", "dovecot.log"))


# --- the imap_sieve route: contrib/dovecot/90-mailsift-imapsieve.conf with
# its install paths pointed at the build tree.
INSTALLED_SIEVE = "/usr/local/share/mailsift/sieve"
INSTALLED_PIPE = "/usr/local/libexec/mailsift/sieve-pipe"


def imapsieve_conf(env):
    """dovecot.conf text for the imap_sieve route; needs env.write_ms_conf()
    first. The pipe dir holds a wrapper that hands the helper that config."""
    sieve_dir, pipe_dir = env.path("sieve"), env.path("sieve-pipe")
    os.makedirs(sieve_dir)
    os.makedirs(pipe_dir)
    for name in ("report-spam.sieve", "report-ham.sieve"):
        shutil.copy(os.path.join(harness.SRCDIR, "sieve-scripts", name), sieve_dir)
    helper = os.path.join(harness.BUILDDIR, "sieve-scripts", "mailsift-spool-learn")
    if not os.path.exists(helper):
        raise FileNotFoundError(helper + " is not built")
    wrapper = os.path.join(pipe_dir, "mailsift-spool-learn")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec %s -c %s "$@"\n' % (helper, env.ms_conf))
    os.chmod(wrapper, 0o755)
    with open(os.path.join(harness.SRCDIR, "contrib", "dovecot",
                           "90-mailsift-imapsieve.conf")) as f:
        text = f.read()
    return text.replace(INSTALLED_SIEVE, sieve_dir).replace(INSTALLED_PIPE, pipe_dir)


def sievec(env, script):
    """Compile an installed copy of script with the private config, as an
    admin would; returns sievec's result."""
    return subprocess.run(["sievec", "-c", env.dovecot_conf, env.path("sieve", script)],
                          capture_output=True, text=True)
