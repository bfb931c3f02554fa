"""Private real daemons for mailsift's end-to-end tests.

Every test gets a fresh temp dir; each daemon runs there on unix sockets or
127.0.0.1 high ports and is stopped by PID at cleanup (see RECIPES in the
design notes). Nothing here touches the host's own services or spools.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

SRCDIR = os.environ.get("MS_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILDDIR = os.environ.get("MS_BUILDDIR", SRCDIR)
CORPUS = os.environ.get("MS_CORPUS", os.path.join(SRCDIR, "..", "shared", "corpus", "spamassassin"))
VMAIL = pwd.getpwnam("vmail")


def binary(name):
    """Path of a built mailsift binary (lda/, learner/, test helpers in tests/)."""
    for sub in ("lda", "learner", "milter", "tests"):
        path = os.path.join(BUILDDIR, sub, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(name + " is not built in " + BUILDDIR)


def plugin_so():
    """The built Dovecot plugin (dovecot-plugin/)."""
    path = os.path.join(BUILDDIR, "dovecot-plugin", ".libs", "lib95_mailsift_plugin.so")
    if not os.path.exists(path):
        raise FileNotFoundError(path + " is not built")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise TimeoutError("timed out waiting for " + what)


def can_connect(path_or_port):
    try:
        if isinstance(path_or_port, int):
            s = socket.create_connection(("127.0.0.1", path_or_port), timeout=1)
            s.close()
        else:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path_or_port)
        return True
    except OSError:
        return False


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(pid, sig=signal.SIGTERM, timeout=10.0):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    try:
        wait_for(lambda: not pid_alive(pid), timeout, "pid %d to exit" % pid)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def read_pidfile(path, timeout=10.0):
    wait_for(lambda: read_text(path).strip(), timeout, path)
    return int(read_text(path).strip())


class Env:
    """A private temp dir and the daemons started in it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ms-e2e.")
        os.chmod(self.dir, 0o755)
        self._stops = []
        self.users_file = self.path("users")
        self.mail_root = self.path("mail")
        os.makedirs(self.mail_root)
        os.chown(self.mail_root, VMAIL.pw_uid, VMAIL.pw_gid)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def on_cleanup(self, fn):
        self._stops.append(fn)

    def cleanup(self):
        for fn in reversed(self._stops):
            try:
                fn()
            except Exception as e:  # keep stopping the others
                print("cleanup:", e)
        self._stops = []
        if os.environ.get("MS_KEEP_TMP"):
            print("kept", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- users: one passwd-file read by mailsift and Dovecot alike
    def write_users(self, users, extra_lines=()):
        with open(self.users_file, "w") as f:
            for u in users:
                f.write("%s:{PLAIN}secret::::::\n" % u)
            for line in extra_lines:
                f.write(line + "\n")
        os.chmod(self.users_file, 0o644)

    def maildir(self, user, folder=None):
        local, domain = user.split("@")
        base = os.path.join(self.mail_root, domain, local)
        return base if folder in (None, "INBOX") else os.path.join(base, "." + folder)

    def messages(self, user, folder=None, sub="new"):
        d = os.path.join(self.maildir(user, folder), sub)
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, n) for n in os.listdir(d))

    # --- mailsift.conf
    def write_ms_conf(self, **keys):
        conf = {
            "userdb": "passwd-file:" + self.users_file,
            "mail_location": "maildir:" + self.mail_root + "/%d/%n",
            "lmtp_socket": self.path("lmtp.sock"),
            "redis": "unix:" + self.path("redis.sock"),
            "spool_dir": self.path("spool"),
            "learner_socket": self.path("learner.sock"),
            "pid_file": self.path("mailsift.pid"),
            "user": "vmail",
            "group": "vmail",
        }
        conf.update({k: str(v) for k, v in keys.items()})
        path = self.path("mailsift.conf")
        with open(path, "w") as f:
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        self.ms_conf = path
        return path

    # --- mailsift-lmtpd, in the foreground (-F), on the private socket
    def start_lmtpd(self, **keys):
        """Start mailsift-lmtpd with write_ms_conf(**keys); returns the Popen."""
        conf = self.write_ms_conf(**keys)
        sock = keys.get("lmtp_socket", self.path("lmtp.sock"))
        log = open(self.path("lmtpd.log"), "ab")
        proc = subprocess.Popen([binary("mailsift-lmtpd"), "-F", "-c", conf],
                                stdout=log, stderr=subprocess.STDOUT)
        self.on_cleanup(lambda: (stop_pid(proc.pid), proc.wait(10), log.close()))
        wait_for(lambda: can_connect(sock) or proc.poll() is not None, what="lmtpd socket")
        if proc.poll() is not None:
            raise RuntimeError("mailsift-lmtpd exited: " + read_text(self.path("lmtpd.log")))
        self.lmtpd = proc
        self.lmtp_socket = sock
        return proc

    # --- redis
    def start_redis(self):
        sock = self.path("redis.sock")
        subprocess.run(["redis-server", "--port", "0", "--unixsocket", sock,
                        "--unixsocketperm", "777", "--save", "", "--appendonly", "no",
                        "--dir", self.dir, "--daemonize", "yes",
                        "--pidfile", self.path("redis.pid"),
                        "--logfile", self.path("redis.log")], check=True)
        pid = read_pidfile(self.path("redis.pid"))
        wait_for(lambda: can_connect(sock), what="redis socket")
        self.on_cleanup(lambda: stop_pid(pid))
        self.redis_pid = pid
        return sock

    def stop_redis(self):
        stop_pid(self.redis_pid)

    def redis_cli(self, *args):
        out = subprocess.run(["redis-cli", "-s", self.path("redis.sock")] + list(args),
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    # --- dovecot, IMAP (and LMTP for comparisons) on the same Maildirs
    def start_dovecot(self, extra_conf="", protocols="imap"):
        os.makedirs(self.path("dovecot", "run"), exist_ok=True)
        port = free_port()
        conf = self.path("dovecot", "dovecot.conf")
        with open(conf, "w") as f:
            f.write(DOVECOT_CONF % {"t": self.path("dovecot"), "users": self.users_file,
                                    "mail": self.mail_root, "port": port,
                                    "protocols": protocols} + extra_conf)
        subprocess.run(["dovecot", "-c", conf], check=True)
        pid = read_pidfile(self.path("dovecot", "run", "master.pid"))
        wait_for(lambda: can_connect(port), what="dovecot imap")
        self.on_cleanup(lambda: stop_pid(pid))
        self.dovecot_conf = conf
        self.imap_port = port
        return port

    # --- OpenSMTPD in a private mount namespace (its queue path is compiled in)
    def start_smtpd(self, action, vusers):
        os.makedirs(self.path("smtpd", "spool"), exist_ok=True)
        os.makedirs(self.path("smtpd", "run"), exist_ok=True)
        vfile = self.path("smtpd", "vusers")
        with open(vfile, "w") as f:
            for u in vusers:
                f.write("%s vmail\n" % u)
        port = free_port()
        conf = self.path("smtpd", "smtpd.conf")
        with open(conf, "w") as f:
            f.write('table vusers file:%s\n' % vfile)
            f.write('listen on 127.0.0.1 port %d hostname mx.example.test\n' % port)
            f.write('action "inbound" %s virtual <vusers>\n' % action)
            f.write('match from any for domain "example.test" action "inbound"\n')
        subprocess.run(["smtpd", "-n", "-f", conf], check=True, capture_output=True)
        log = open(self.path("smtpd", "smtpd.log"), "w")
        cmd = ("mount --bind %s /var/spool && mount --bind %s /run && exec smtpd -d -f %s"
               % (self.path("smtpd", "spool"), self.path("smtpd", "run"), conf))
        proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", cmd],
                                stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: can_connect(port), what="smtpd")
        self.on_cleanup(lambda: (proc.terminate(), proc.wait(10), log.close()))
        self.smtpd_pid = proc.pid
        self.smtp_port = port
        return port

    # --- mailsift-learnd (in the foreground, so we hold its PID) and mailsift
    def start_learnd(self):
        """Start mailsift-learnd -F on self.ms_conf; waits for its socket."""
        sock = self.path("learner.sock")
        log = open(self.path("learnd.log"), "a")
        proc = subprocess.Popen([binary("mailsift-learnd"), "-F", "-c", self.ms_conf],
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: can_connect(sock) or proc.poll() is not None, what="learner socket")
        if proc.poll() is not None:
            raise RuntimeError("mailsift-learnd exited: " + read_text(self.path("learnd.log")))
        self.on_cleanup(lambda: (stop_pid(proc.pid), proc.wait(10)))
        self.learnd = proc
        return proc

    def learnd_log(self):
        return read_text(self.path("learnd.log"))

    def mailsift(self, *args, check=True, stdin=None):
        """Run the mailsift command line tool; returns the CompletedProcess."""
        return subprocess.run([binary("mailsift"), "-c", self.ms_conf] + list(args),
                              check=check, capture_output=True, text=True, input=stdin)

    def mailsift_stats(self, *args):
        """`mailsift stats` as a dict of ints (user: stays a string)."""
        out = self.mailsift("stats", *args).stdout
        pairs = (line.split(": ", 1) for line in out.splitlines() if ": " in line)
        return {k: (v if k == "user" else int(v)) for k, v in pairs}

    def listen_as_learner(self, backlog=16):
        """The learner socket, listening and never read: to a producer a
        learner is up (the plugin names files, format 4), but nothing pins
        or learns them. Closed at cleanup."""
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(self.path("learner.sock"))
        sock.listen(backlog)
        os.chmod(self.path("learner.sock"), 0o777)  # imap runs as vmail
        self.on_cleanup(sock.close)
        return sock

    def learner_request(self, line, body=None):
        """One request on the learner socket; returns the reply line."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(30)
        s.connect(self.path("learner.sock"))
        s.sendall(line.encode() + b"\n" + (body or b""))
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        s.close()
        return reply.decode().rstrip("\n")

    def spool(self, user, cls, files, poke=True, batch=False):
        """Write files into the training spool with lib/ms-spool.c, as the
        mail user like the Dovecot plugin; creates the spool if need be.
        batch: all in one batch file, as the plugin writes a MOVE."""
        for sub in ("", "tmp", "new", "bad", "msg"):  # as mailsift-learnd makes it
            d = self.path("spool", sub)
            if not os.path.isdir(d):
                os.mkdir(d, 0o700)
                os.chown(d, VMAIL.pw_uid, VMAIL.pw_gid)
        cmd = [binary("spool-write")] + (["-b"] if batch else [])
        if poke:
            cmd += ["-p", self.path("learner.sock")]
        subprocess.run(cmd + [self.path("spool"), user, cls] + list(files), check=True,
                       user=VMAIL.pw_uid, group=VMAIL.pw_gid, extra_groups=[])

    # --- the training spool, as mailsift-learnd and its producers share it
    def make_spool(self):
        spool = self.path("spool")
        for sub in ("", "tmp", "new", "bad", "msg"):  # as mailsift-learnd makes it
            os.makedirs(os.path.join(spool, sub), exist_ok=True)
            os.chown(os.path.join(spool, sub), VMAIL.pw_uid, VMAIL.pw_gid)
        return spool

    def spool_files(self, sub="new"):
        d = self.path("spool", sub)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


    # --- Dovecot with the mailsift plugin, loaded from a private module dir
    def plugin_module_dir(self):
        """The system's mail plugins plus ours, so nothing is installed."""
        d = self.path("dovecot", "modules")
        os.makedirs(d, exist_ok=True)
        sysdir = "/usr/lib/dovecot/modules"
        for name in os.listdir(sysdir):
            if name.endswith(".so"):
                os.symlink(os.path.join(sysdir, name), os.path.join(d, name))
        os.symlink(plugin_so(), os.path.join(d, "lib95_mailsift_plugin.so"))
        return d

    def plugin_conf(self, mail_plugins="", **settings):
        """dovecot.conf text that loads the plugin; settings go to plugin { }."""
        conf = {"mailsift_spool_dir": self.path("spool"),
                "mailsift_learner_socket": self.path("learner.sock")}
        conf.update({k: str(v) for k, v in settings.items()})
        return ("mail_plugin_dir = %s\nmail_plugins = $mail_plugins %s mailsift\n"
                "plugin {\n%s}\n" % (self.plugin_module_dir(), mail_plugins,
                                     "".join("  %s = %s\n" % kv for kv in conf.items())))

    def smtpctl(self, *args):
        return subprocess.run(["nsenter", "-t", str(self.smtpd_pid), "-m", "smtpctl"] +
                              list(args), capture_output=True, text=True).stdout


DOVECOT_CONF = """
base_dir = %(t)s/run
state_dir = %(t)s/state
log_path = %(t)s/dovecot.log
protocols = %(protocols)s
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_uid = vmail
mail_gid = vmail
first_valid_uid = 1
mail_location = maildir:%(mail)s/%%d/%%n
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %(users)s
}
userdb {
  driver = passwd-file
  args = username_format=%%u %(users)s
  default_fields = uid=vmail gid=vmail home=%(mail)s/%%d/%%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %(port)d
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
namespace inbox {
  inbox = yes
  separator = .
  mailbox Junk {
    auto = subscribe
    special_use = \\Junk
  }
  mailbox Trash {
    auto = subscribe
    special_use = \\Trash
  }
}
"""


class TestCase(unittest.TestCase):
    """unittest case with a private Env per test."""

    def setUp(self):
        self.env = Env()
        self.addCleanup(self.env.cleanup)


def main():
    unittest.main(verbosity=2)
