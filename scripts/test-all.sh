#!/bin/bash
# Install what is needed, build, and run every test: unit tests (also under
# AddressSanitizer + UndefinedBehaviorSanitizer, and built against hiredis
# 1.2.0 as well as Debian 12's 0.14), end-to-end tests with real
# daemons, short fuzz runs, and make distcheck. Run as root on Debian 12.
# Prints one line per suite and ends with "N passed, N failed".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PYTHONDONTWRITEBYTECODE=1
log_dir=${MS_TEST_LOGS:-$top/test-logs}
mkdir -p "$log_dir"
passed=0
failed=0

step() {
	local name=$1
	shift
	local start=$SECONDS
	if "$@" >"$log_dir/$name.log" 2>&1; then
		passed=$((passed + 1))
		echo "PASS: $name ($((SECONDS - start)) s)"
	else
		failed=$((failed + 1))
		echo "FAIL: $name ($((SECONDS - start)) s), last lines of $log_dir/$name.log:"
		tail -n 40 "$log_dir/$name.log" | sed 's/^/    /'
	fi
}

build_tree() {
	local dir=$1
	shift
	mkdir -p "$dir" && cd "$dir" &&
		"$top/configure" --enable-werror "$@" && make -j"$(nproc)"
	local rc=$?
	cd "$top"
	return $rc
}

unit() {
	make -C "$1" check || { cat "$1"/tests/unit/*.log "$1"/tests/*.log 2>/dev/null; return 1; }
}

step install-deps ./scripts/install-deps.sh || true
step autoreconf autoreconf -fi
step build build_tree build
step unit-tests unit build
step build-asan build_tree build-asan CC=clang \
	CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	LDFLAGS="-fsanitize=address,undefined"
step unit-tests-asan unit build-asan
step unit-tests-hiredis1 ./scripts/test-hiredis1.sh
for t in tests/e2e/test-*; do
	[ -x "$t" ] || continue
	name=e2e-$(basename "$t" | sed 's/\..*//; s/^test-//')
	step "$name" env MS_BUILDDIR="$top/build" MS_SRCDIR="$top" "$t"
done
step fuzz env MS_SRCDIR="$top" tests/fuzz/run.sh "${MS_FUZZ_SECONDS:-20}"
step distcheck make -C build distcheck

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
