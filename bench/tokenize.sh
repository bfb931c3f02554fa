#!/bin/sh
# Parse + tokenize throughput and memory over the corpus.
# usage: bench/tokenize.sh [BUILDDIR] [DIR...]   (default: build tree ., corpus
# ../shared/corpus). Build mailsift first (make).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src}
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- "$src/../shared/corpus"
out=$(mktemp -d /tmp/ms-bench-tokenize.XXXXXX)
trap 'rm -rf "$out"' EXIT
cc -O2 -I"$src/lib" -o "$out/tokenize" "$src/bench/tokenize.c" \
	"$build/lib/.libs/libmailsift.a" -L/usr/lib/dovecot -Wl,-rpath,/usr/lib/dovecot -ldovecot \
	-lhiredis -lcrypto -lm
"$out/tokenize" "$@"
