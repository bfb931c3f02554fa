#!/bin/bash
# Build every libFuzzer harness (fuzz-*.c) with clang and run each for N
# seconds (default 20) on its seed corpus. A harness names the lib/ sources it
# needs on a line "fuzz-sources: a.c b.c" and extra flags on "fuzz-flags: ...".
set -eu
seconds=${1:-20}
src=${MS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=${MS_FUZZ_OUT:-$(mktemp -d /tmp/ms-fuzz.XXXXXX)}
rc=0
for h in "$src"/tests/fuzz/fuzz-*.c; do
	name=$(basename "$h" .c)
	sources=$(sed -n 's/.*fuzz-sources: *//p' "$h" | sed 's/ *\*\/.*//')
	flags=$(sed -n 's/.*fuzz-flags: *//p' "$h" | sed 's/ *\*\/.*//')
	paths=""
	for s in $sources; do paths="$paths $src/lib/$s"; done
	# shellcheck disable=SC2086
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-I"$src/lib" -I"$src" -o "$out/$name" "$h" $paths $flags
	mkdir -p "$out/$name.corpus"
	seeds="$src/tests/fuzz/seeds/$name"
	[ -d "$seeds" ] || seeds=""
	echo "== $name: ${seconds}s"
	if ! "$out/$name" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
		"$out/$name.corpus" $seeds >"$out/$name.log" 2>&1; then
		tail -n 60 "$out/$name.log"
		rc=1
	else
		grep -E '^#[0-9]+.*DONE|Done [0-9]+ runs' "$out/$name.log" | tail -n 1
	fi
done
exit $rc
