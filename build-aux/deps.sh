#!/bin/sh
# Installs the Debian packages msgtrk needs, only those that are missing.
#   build-aux/deps.sh build   what `make` needs
#   build-aux/deps.sh test    what `make test` needs as well
set -eu

build="gcc pkg-config meson ninja-build libssl-dev libevent-dev
	libsqlite3-dev libpq-dev libc-ares-dev"
test="$build libcmocka-dev clang libclang-rt-14-dev cppcheck clang-format
	python3 dnsmasq-base swaks postfix openssl sqlite3 postgresql"

case "${1:-build}" in
build) want=$build ;;
test) want=$test ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

# The tests run msgtrkd as root, which drops to the unprivileged user
# `msgtrk` (the `user` config key), as a real installation does.
if [ "${1:-build}" = test ] && [ "$(id -u)" -eq 0 ] &&
    ! getent passwd msgtrk >/dev/null; then
	echo "deps: adding the system user msgtrk"
	useradd --system --no-create-home --home-dir /nonexistent \
	    --shell /usr/sbin/nologin msgtrk
fi

missing=
for p in $want; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q '^install ok installed$' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Postfix is a test peer and the benchmark baseline, never the system MTA:
# install it without a configuration (TESTING.md).
echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
