#!/bin/sh
# Crash safety (tests/crash/crash.py) and disk full
# (tests/crash/test_diskfull.py) against BUILDDIR's msgtrkd.
#
#   tests/crash/run.sh BUILDDIR [ROUNDS [MESSAGES]]
#
# make test: 2 crash rounds of 300 messages (kill points commit, delivery);
# make soak: 20 rounds of 2,000 (every kill point four times: commit,
# delivery, data, purge, and compact).  Round i uses kill point i mod 5,
# so only soak reaches the compact rounds: kill -9 while journal segments
# of the real size (64 MiB) are compacted, with messages of 2 MiB (about
# 64-100 MiB and 6-10 s a round; MESSAGES does not apply to them), checking
# also that no message comes back after its DONE (crash.py's header).
# Prints one line per round (sent, acked, lost, duplicated) and ends with
# "N passed, N failed" over both programs.  Needs root (msgtrkd drops to
# the user msgtrk; the tmpfs case mounts, or says it skipped).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
rounds=${2:-2}
messages=${3:-300}
case "$build" in
/*) ;;
*) build="$top/$build" ;;
esac
export MSGTRK_BUILD="$build"
passed=0
failed=0
for t in diskfull crash; do
	out=$(mktemp "${TMPDIR:-/tmp}/msgtrk-crash.XXXXXX")
	if [ $t = crash ]; then
		timeout $((rounds * 600)) python3 "$top/tests/crash/crash.py" \
		    --rounds "$rounds" --messages "$messages" --clients 20
	else
		timeout 600 python3 "$top/tests/crash/test_diskfull.py"
	fi >"$out" 2>&1
	rc=$?
	cat "$out"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
	rm -f "$out"
	p=${line%% passed*}
	f=${line#*, }
	f=${f%% failed*}
	[ -n "$line" ] || { p=0; f=0; }
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	passed=$((passed + p))
	failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
