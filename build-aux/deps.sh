#!/bin/sh
# Installs the Debian packages msgtrk needs, only those that are missing.
#   build-aux/deps.sh build       what `make` needs (the programs alone)
#   build-aux/deps.sh test        what `make test` needs as well
#   build-aux/deps.sh list WHICH  prints the list (build or test), one a
#                                 line, and installs nothing
# tests/integration/test_ops.py checks that the build list covers every
# dependency() meson.build requires for the programs.
set -eu

# libcrypt-dev: libxcrypt's crypt_rn() for auth = passwd:/path.
build="gcc pkg-config meson ninja-build libssl-dev libevent-dev
	libsqlite3-dev libpq-dev libc-ares-dev libcrypt-dev"
# libcmocka-dev: the unit tests; mandoc: the man pages' lint; debhelper,
# devscripts, fakeroot, lintian: the Debian package built from the tree;
# neomutt: a real mail user agent for msgtrk sendmail; systemd: the
# unit's check (systemd-analyze verify); dovecot-core: a real Dovecot
# auth server for auth = dovecot:; whois: mkpasswd, to make crypt(3)
# hashes as an operator does; msmtp: a real submission client (AUTH over
# STARTTLS and implicit TLS); chromium: a real browser for the HTTP
# tracking page (test_http.py drives it through its DevTools protocol);
# prometheus: promtool checks /metrics (its service is never started).
test="$build libcmocka-dev clang libclang-rt-14-dev cppcheck clang-format
	python3 dnsmasq-base swaks postfix openssl sqlite3 postgresql
	mandoc debhelper devscripts fakeroot lintian neomutt systemd
	dovecot-core whois msmtp chromium prometheus"

case "${1:-build}" in
build) want=$build ;;
test) want=$test ;;
list)
	case "${2:-}" in
	build) printf '%s\n' $build ;;
	test) printf '%s\n' $test ;;
	*) echo "usage: $0 list build|test" >&2; exit 2 ;;
	esac
	exit 0 ;;
*) echo "usage: $0 build|test|list build|test" >&2; exit 2 ;;
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
case " $missing " in
*" postfix "*)
	echo "postfix postfix/main_mailer_type select No configuration" |
	    debconf-set-selections ;;
esac
# Packages with a service (prometheus, dovecot-core, postgresql) must
# not start it: the tests run their own instances.  Without a
# policy-rc.d of the machine's, one that refuses every start is in
# place for the install.
policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	policy=/usr/sbin/policy-rc.d
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
