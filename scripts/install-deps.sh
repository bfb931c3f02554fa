#!/bin/sh
# Install everything mailsift's build, tests and demo need on Debian 12 (as root).
# Idempotent; the peers for bench/ come with --bench.
set -eu
export DEBIAN_FRONTEND=noninteractive
PKGS="build-essential autoconf automake libtool pkg-config check clang clang-format
  libclang-rt-14-dev python3 swaks procps iproute2 util-linux
  dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve dovecot-managesieved dovecot-dev
  opensmtpd redis-server redis-tools libhiredis-dev libmilter-dev libssl-dev"
BENCH_PKGS="bogofilter spamprobe rspamd spamassassin spamc time"
[ "${1:-}" = "--bench" ] && PKGS="$PKGS $BENCH_PKGS"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -q
	# Debian's maintainer scripts try to start the daemons; nothing here wants that.
	apt-get install -y -q $missing
fi
# The mail owner of the usual virtual-user setup (DESIGN.md).
getent group vmail >/dev/null || groupadd -g 5000 vmail
getent passwd vmail >/dev/null ||
	useradd -u 5000 -g vmail -M -d /nonexistent -s /usr/sbin/nologin vmail
