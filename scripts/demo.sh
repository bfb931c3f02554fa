#!/bin/sh
# mailsift, up and running on loopback in one command (Debian 12, as root):
#   ./scripts/demo.sh         install deps, build, start Redis, mailsift-lmtpd and a
#                             private Dovecot IMAP on one Maildir, deliver samples
#   ./scripts/demo.sh stop    stop everything it started (the mail stays in $MS_DEMO_DIR)
# Nothing here touches the system's own Redis, Dovecot or OpenSMTPD.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
demo=${MS_DEMO_DIR:-/tmp/mailsift-demo}
build=${MS_BUILDDIR:-$top/build}
corpus=${MS_CORPUS:-$top/../shared/corpus/spamassassin}
user=demo@example.test
password=demo

stop_pidfile() {
	[ -f "$1" ] || return 0
	pid=$(cat "$1")
	if kill "$pid" 2>/dev/null; then
		# SIGTERM: each daemon finishes what it is doing, then exits
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$1"
}

stop() {
	stop_pidfile "$demo/mailsift-learnd.pid"
	stop_pidfile "$demo/mailsift-lmtpd.pid"
	stop_pidfile "$demo/dovecot/run/master.pid"
	stop_pidfile "$demo/redis.pid"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_socket() {
	for _ in $(seq 100); do
		python3 -c 'import socket,sys
s = socket.socket(socket.AF_UNIX if sys.argv[1].startswith("/") else socket.AF_INET)
s.connect(sys.argv[1] if sys.argv[1].startswith("/") else ("127.0.0.1", int(sys.argv[1])))' \
			"$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "demo: $2 did not come up; see $demo/*.log" >&2
	exit 1
}

build_mailsift() {
	"$top/scripts/install-deps.sh"
	[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
	mkdir -p "$build"
	[ -f "$build/Makefile" ] || (cd "$build" && "$top/configure")
	make -C "$build" -j"$(nproc)" >"$demo/build.log" 2>&1 ||
		{ tail -n 30 "$demo/build.log"; exit 1; }
}

write_config() {
	mkdir -p "$demo/mail" "$demo/spool" "$demo/dovecot/run"
	chmod 0755 "$demo"
	chown vmail:vmail "$demo/mail" "$demo/spool"
	# one passwd-file for mailsift and Dovecot alike
	printf '%s:{PLAIN}%s::::::\n' "$user" "$password" >"$demo/users"
	cat >"$demo/mailsift.conf" <<EOC
userdb = passwd-file:$demo/users
mail_location = maildir:$demo/mail/%d/%n
lmtp_socket = $demo/lmtp.sock
redis = unix:$demo/redis.sock
spool_dir = $demo/spool
learner_socket = $demo/learner.sock
pid_file = $demo/mailsift-lmtpd.pid
user = vmail
group = vmail
EOC
	cat >"$demo/dovecot/dovecot.conf" <<EOC
base_dir = $demo/dovecot/run
state_dir = $demo/dovecot/state
log_path = $demo/dovecot/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
mail_uid = vmail
mail_gid = vmail
first_valid_uid = 1
mail_location = maildir:$demo/mail/%d/%n
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $demo/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $demo/users
  default_fields = uid=vmail gid=vmail home=$demo/mail/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
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
EOC
}

start_daemons() {
	redis-server --port 0 --unixsocket "$demo/redis.sock" --unixsocketperm 777 --save '' \
		--appendonly no --dir "$demo" --daemonize yes --pidfile "$demo/redis.pid" \
		--logfile "$demo/redis.log"
	wait_for_socket "$demo/redis.sock" redis
	# -F keeps the log in a file here; a real server runs it without -F (syslog)
	"$build/lda/mailsift-lmtpd" -F -c "$demo/mailsift.conf" </dev/null >"$demo/lmtpd.log" 2>&1 &
	echo $! >"$demo/mailsift-lmtpd.pid"
	wait_for_socket "$demo/lmtp.sock" mailsift-lmtpd
	# Dovecot's log process keeps the stderr it was given: not our terminal
	dovecot -c "$demo/dovecot/dovecot.conf" </dev/null >"$demo/dovecot/startup.log" 2>&1 ||
		{ cat "$demo/dovecot/startup.log"; exit 1; }
	wait_for_socket "$imap_port" dovecot
	start_learner
}

# Hook for the learner: started once it is built (learner/).
start_learner() {
	[ -x "$build/learner/mailsift-learnd" ] || return 0
	"$build/learner/mailsift-learnd" -F -c "$demo/mailsift.conf" </dev/null >"$demo/learnd.log" 2>&1 &
	echo $! >"$demo/mailsift-learnd.pid"
}

# A few ham and spam messages from the corpus (or two made up without it),
# delivered over LMTP like OpenSMTPD would.
deliver_samples() {
	python3 - "$demo/lmtp.sock" "$user" "$corpus" <<'EOP'
import os, smtplib, sys
sock, user, corpus = sys.argv[1:]
msgs = []
for folder, n in (("easy_ham", 4), ("spam", 3)):
    d = os.path.join(corpus, folder)
    if os.path.isdir(d):
        msgs += [os.path.join(d, f) for f in sorted(os.listdir(d))[:n]]
blobs = [open(p, "rb").read() for p in msgs] or [
    b"From: alice@example.org\nSubject: hello from the demo\n\nIt works.\n",
    b"From: bob@example.org\nSubject: second message\n\nStill works.\n"]
lmtp = smtplib.LMTP(sock)
for blob in blobs:
    lmtp.sendmail("demo-sender@example.org", [user], blob)
lmtp.quit()
print("delivered %d sample messages to %s" % (len(blobs), user))
EOP
}

if [ "${1:-}" = "stop" ]; then
	stop
	echo "mailsift demo stopped; its mail is still in $demo (rm -rf $demo to remove)"
	exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it installs packages)" >&2; exit 1; }
mkdir -p "$demo"
stop # a second run starts afresh
build_mailsift
imap_port=$(free_port)
write_config
start_daemons
deliver_samples
cat <<EOM

mailsift demo is running (everything in $demo):
  LMTP     $demo/lmtp.sock   (mailsift-lmtpd, log: $demo/lmtpd.log)
  IMAP     host 127.0.0.1  port $imap_port  user $user  password $password
  Maildir  $demo/mail/example.test/demo/
Read the mail, e.g.:
  curl -s "imap://127.0.0.1:$imap_port/INBOX;UID=1" --user '$user:$password'
or point any IMAP client at 127.0.0.1:$imap_port (plain text, no TLS: loopback only).
Deliver more:  swaks --socket $demo/lmtp.sock --protocol LMTP --to $user
Stop it:       $0 stop
EOM
