#!/usr/bin/env python3
"""Differential test: mailsift's Sieve (lib/ms-sieve) against Pigeonhole's own
sieve-test, executing (-e) with Dovecot's storage into a private Maildir.

For every script in tests/sieve/scripts/*.sieve times every message below, both sides
run with the same envelope and settings, and the normalised action lists must
be equal:
  store FOLDER [flags]   what ended up in each folder (sieve-test: read back
                         from the Maildir it wrote; mailsift: its decisions)
  redirect ADDR          sieve-test: its log line; mailsift: what reached the
  vacation ADDR          capture sendmail
  reject                 sieve-test: its log line; mailsift: the reject status
One documented normalisation: a script that does not compile makes sieve-test
exit without storing, while a delivery agent keeps the message (Dovecot's LDA
does the same), so that case expects "store INBOX".
"""
import base64
import concurrent.futures
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import harness

SIEVE_DIR = os.path.join(harness.SRCDIR, "tests", "sieve")
CORPUS = harness.CORPUS
SENDER = "sender@example.org"
RCPTS = ["user@example.test", "user+lists@example.test"]
# Folders the scripts use. sieve-test does not create folders, mailsift does
# (DESIGN: created on demand), so they exist beforehand on the sieve-test side.
FOLDERS = ["Work", "Junk", "Archive", "Important", "Tagged", "Lists", "Lists.dev",
           "Lists.project", "Other", "Old", "Newsletters", "Spam-High", "Vacation",
           "Käse", "Trash"]
FLAG_LETTERS = {"D": "\\draft", "F": "\\flagged", "R": "\\answered", "S": "\\seen",
                "T": "\\deleted"}
SETTINGS = {
    "sieve_extensions": "+spamtest +spamtestplus +vacation-seconds",
    "sieve_spamtest_status_type": "score",
    "sieve_spamtest_status_header": "X-Spam-Score",
    "sieve_spamtest_max_value": "1.0",
    "recipient_delimiter": "+",
}
CAPTURE = """#!/bin/sh
# capture sendmail: keep the arguments and the message
f=%s/$(date +%%s%%N).$$
{ echo "ARGS: $*"; cat; } > "$f"
"""


def messages():
    out = sorted(glob.glob(os.path.join(SIEVE_DIR, "msg", "*.eml")))
    for sub, n in (("easy_ham", 1), ("spam_2", 1)):
        d = os.path.join(CORPUS, sub)
        if os.path.isdir(d):
            out += [os.path.join(d, f) for f in sorted(os.listdir(d))[:n]]
    return out


def mutf7_decode(name):
    """IMAP modified UTF-7 (RFC 3501 5.1.3), as Maildir++ folder names are."""
    def repl(m):
        s = m.group(1)
        if s == "":
            return "&"
        b = s.replace(",", "/")
        b += "=" * (-len(b) % 4)
        return base64.b64decode(b).decode("utf-16-be")
    return re.sub(r"&([^-]*)-", repl, name)


def mutf7_encode(name):
    out, run = [], ""
    for ch in name + "\0":
        if ch != "\0" and not (0x20 <= ord(ch) <= 0x7e):
            run += ch
            continue
        if run:
            b = base64.b64encode(run.encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b.replace("/", ",") + "-")
            run = ""
        if ch != "\0":
            out.append("&-" if ch == "&" else ch)
    return "".join(out)


def read_maildir(root):
    """store lines for every message in a Maildir++ tree."""
    lines = []
    folders = [("INBOX", root)] + [(mutf7_decode(e[1:]), os.path.join(root, e))
                                   for e in sorted(os.listdir(root))
                                   if e.startswith(".") and os.path.isdir(os.path.join(root, e))]
    for name, path in folders:
        keywords = {}
        kwfile = os.path.join(path, "dovecot-keywords")
        if os.path.exists(kwfile):
            with open(kwfile, encoding="utf-8") as f:
                for line in f:
                    idx, kw = line.rstrip("\n").split(" ", 1)
                    keywords[chr(ord("a") + int(idx))] = kw.lower()
        for sub in ("new", "cur"):
            d = os.path.join(path, sub)
            if not os.path.isdir(d):
                continue
            for f in os.listdir(d):
                flags = set()
                if ":2," in f:
                    for c in f.split(":2,", 1)[1]:
                        flags.add(FLAG_LETTERS.get(c) or keywords.get(c, "?" + c))
                lines.append(" ".join(["store", name] + sorted(flags)))
    return lines


def sieve_test_side(t, script, msg, rcpt):
    mail = os.path.join(t, "st-mail")
    for folder in [""] + ["." + mutf7_encode(f) for f in FOLDERS]:
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(mail, folder, sub), exist_ok=True)
    subprocess.run(["chown", "-R", "vmail:vmail", mail], check=True)
    conf = os.path.join(t, "st.conf")
    with open(conf, "w") as f:
        f.write("mail_uid = vmail\nmail_gid = vmail\nmail_location = maildir:%s\n" % mail)
        f.write("namespace inbox {\n  inbox = yes\n  separator = .\n}\n")
        f.write("plugin {\n")
        for k, v in SETTINGS.items():
            f.write("  %s = %s\n" % (k, v))
        f.write("  sieve = file:%s\n  sieve_user_email = %s\n}\n"
                % (os.path.join(t, "home", "sieve"), RCPTS[0]))
    proc = subprocess.run(["sieve-test", "-c", conf, "-e", "-l", "maildir:" + mail,
                           "-f", SENDER, "-r", rcpt, script, msg],
                          capture_output=True, text=True, errors="replace")
    log = proc.stderr
    if re.search(r"(failed to compile|compilation failed)", log, re.I) or \
            "error: validation failed" in log or re.search(r"^sieve-test\(.*\): Fatal:", log, re.M):
        return ["store INBOX"], log
    lines = read_maildir(mail)
    for m in re.finditer(r"^info: .*?redirect action: forwarded to <([^>]*)>", log, re.M):
        lines.append("redirect " + m.group(1))
    for m in re.finditer(r"^info: .*?vacation action: sent vacation response to <([^>]*)>",
                         log, re.M):
        lines.append("vacation " + m.group(1))
    if re.search(r"^info: .*?reject action: rejected message", log, re.M):
        lines = [l for l in lines if l != "store INBOX"] + ["reject"]
    return sorted(lines), log + proc.stdout


def mailsift_side(t, runner, script, msg, rcpt):
    cap = os.path.join(t, "cap")
    os.makedirs(cap, exist_ok=True)
    sendmail = os.path.join(t, "sendmail")
    with open(sendmail, "w") as f:
        f.write(CAPTURE % cap)
    os.chmod(sendmail, 0o755)
    home = os.path.join(t, "home")
    proc = subprocess.run([runner, "-s", sendmail, "-H", home, "-u", RCPTS[0],
                           "-d", os.path.join(home, "sieve"), "-f", SENDER, "-r", rcpt,
                           script, msg], capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        return ["exit %d" % proc.returncode], proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l]
    for name in sorted(os.listdir(cap)):
        with open(os.path.join(cap, name), errors="replace") as f:
            text = f.read()
        rcpts = text.splitlines()[0].split(" -- ", 1)[1].split()
        kind = "vacation" if re.search(r"^Auto-Submitted: auto-replied", text, re.M) else "redirect"
        lines += ["%s %s" % (kind, r) for r in rcpts]
    return sorted(lines), proc.stderr


def run_pair(runner, script, msg, rcpt):
    results = []
    for side in ("st", "ms"):
        t = tempfile.mkdtemp(prefix="ms-sieve-diff.")
        try:
            os.chmod(t, 0o755)
            shutil.copytree(os.path.join(SIEVE_DIR, "home"), os.path.join(t, "home"))
            local = os.path.join(t, os.path.basename(script))
            shutil.copy(script, local)
            subprocess.run(["chown", "-R", "vmail:vmail", t], check=True)
            if side == "st":
                results.append(sieve_test_side(t, local, msg, rcpt))
            else:
                results.append(mailsift_side(t, runner, local, msg, rcpt))
        finally:
            shutil.rmtree(t, ignore_errors=True)
    return results


class SieveDiffTest(unittest.TestCase):
    def test_same_actions_as_sieve_test(self):
        runner = os.path.join(harness.BUILDDIR, "tests", "sieve", "ms-sieve-run")
        if not os.path.exists(runner):
            self.skipTest("ms-sieve-run not built (no Pigeonhole)")
        scripts = sorted(glob.glob(os.path.join(SIEVE_DIR, "scripts", "*.sieve")))
        msgs = messages()
        self.assertGreaterEqual(len(scripts), 30)
        self.assertGreaterEqual(len(msgs), 4)  # the corpus adds two when present
        failures, pairs, kinds = [], 0, set()
        jobs = [(script, msg, RCPTS[i % 2]) for script in scripts
                for i, msg in enumerate(msgs)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = list(pool.map(lambda job: run_pair(runner, *job), jobs))
        for (script, msg, rcpt), results in zip(jobs, outcomes):
            if True:
                pairs += 1
                (expected, st_log), (got, ms_log) = results
                kinds.update(l.split()[0] for l in expected)
                if expected != got:
                    failures.append("%s x %s (rcpt %s):\n  sieve-test: %s\n  mailsift:   %s\n"
                                    "  sieve-test log: %s\n  mailsift log: %s" % (
                                        os.path.basename(script), os.path.basename(msg), rcpt,
                                        expected, got, st_log.strip()[-600:],
                                        ms_log.strip()[-600:]))
        print("%d pairs, %d differ; action kinds seen: %s" % (pairs, len(failures),
                                                             sorted(kinds)))
        # The corpus must exercise every kind of action, or the test proves little.
        self.assertTrue({"store", "redirect", "vacation", "reject"} <= kinds, kinds)
        self.assertEqual(failures, [], "\n".join(failures[:15]))


if __name__ == "__main__":
    harness.main()
