#!/bin/sh
# The tokenizer alone, on the corpus: parse + tokenize speed and memory side
# by side with bogofilter's lexer (bogolexer: MIME decoding, HTML stripping,
# tokens) on the same messages, then the accuracy of the tokens with
# in-memory counts (bench/tokenize-accuracy.c).
# usage: bench/tokenize.sh [BUILDDIR [CORPUS]]   (defaults: the source tree,
# ../shared/corpus). Build mailsift first (make).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src}
corpus=${2:-${MS_CORPUS:-$src/../shared/corpus}}
out=$(mktemp -d /tmp/ms-bench-tokenize.XXXXXX)
trap 'rm -rf "$out"' EXIT
libs="$build/lib/.libs/libmailsift.a -L/usr/lib/dovecot -Wl,-rpath,/usr/lib/dovecot -ldovecot
	-lhiredis -lcrypto -lm"
# shellcheck disable=SC2086
cc -O2 -I"$src/lib" -o "$out/tokenize" "$src/bench/tokenize.c" $libs
# shellcheck disable=SC2086
cc -O2 -I"$src/lib" -o "$out/accuracy" "$src/bench/tokenize-accuracy.c" $libs

echo "== mailsift parse + tokenize"
"$out/tokenize" "$corpus"
if command -v bogolexer >/dev/null; then
	echo "== bogolexer (bogofilter's lexer), the same messages as one mbox, one pass"
	find "$corpus" -type f ! -name README.md | sort | while read -r f; do
		echo "From bench@localhost Sat Jan  1 00:00:00 2000"
		sed 's/^From />From /' "$f"
		echo
	done >"$out/corpus.mbox"
	n=$(grep -c '^From bench@localhost' "$out/corpus.mbox")
	/usr/bin/time -o "$out/time" -f "%e %U %S %M" bogolexer -C -q <"$out/corpus.mbox" \
		>/dev/null 2>&1
	read -r wall user sys rss <"$out/time"
	awk -v n="$n" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" 'BEGIN {
		printf "messages %d: %.0f msg/s wall, %.0f msg/s per CPU second, peak RSS %d kB\n",
			n, n / w, n / (u + s), r }'
fi
echo "== accuracy of the tokens (in-memory counts, lib/ms-classify defaults)"
"$out/accuracy" "$corpus"
