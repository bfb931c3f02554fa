#!/bin/sh
# Build mailsift against hiredis 1.2.0 (Debian 13's) and run the unit tests:
# Debian 12 has hiredis 0.14, which the other builds use, and mailsift reads
# some of hiredis's reader internals, whose types changed in 1.0.
# The source comes from the Debian mirror apt is configured with, checked
# against the SHA-256 below; a failed download fails the test. Needs the
# packages of install-deps.sh. The source tree must not be configured
# in place (the build is out of tree).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
version=1.2.0
sha256=82ad632d31ee05da13b537c124f819eb88e18851d9cb0c30ae0552084811588c
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# the delivery tests run the Sieve worker as a mail user, from the build tree
chmod 755 "$work"

# The Debian archive's URI in apt's configuration (its lists must be
# there to tell which one it is).
debian_mirror() {
	apt-get indextargets --format '$(REPO_URI)' 'Label: Debian' | head -n 1
}
mirror=$(debian_mirror)
if [ -z "$mirror" ]; then
	apt-get update -q
	mirror=$(debian_mirror)
fi
[ -n "$mirror" ] || { echo "no Debian archive in apt's sources" >&2; exit 1; }
tarball=$work/hiredis_$version.orig.tar.gz
/usr/lib/apt/apt-helper download-file \
	"${mirror%/}/pool/main/h/hiredis/hiredis_$version.orig.tar.gz" "$tarball" "SHA256:$sha256"
echo "$sha256  $tarball" | sha256sum -c -
tar -xzf "$tarball" -C "$work"

# hiredis's Makefile takes LIBRARY_PATH, the install's lib directory, from
# the environment, where it may be the compiler's library search path.
prefix=$work/hiredis
make -C "$work/hiredis-$version" -j"$(nproc)" PREFIX="$prefix" LIBRARY_PATH=lib install

mkdir "$work/build"
cd "$work/build"
PKG_CONFIG_PATH=$prefix/lib/pkgconfig "$top/configure" --enable-werror \
	LDFLAGS="-Wl,-rpath,$prefix/lib"
make -j"$(nproc)"
make -j"$(nproc)" check TESTS= # builds the tests, runs none
# they and the programs load 1.2.0, not the system's 0.14
for prog in tests/unit/test-store learner/mailsift-learnd lda/mailsift-lmtpd; do
	ldd "$prog" | grep -F "$prefix/lib/libhiredis.so.1" ||
		{ echo "$prog does not load hiredis $version" >&2; exit 1; }
done
make -j"$(nproc)" check || { cat tests/test-suite.log; exit 1; }
