#!/bin/sh
# Runs every test msgtrk has and ends with one line "N passed, N failed".
#
#   tests/run-tests.sh BUILDDIR... [--fuzz FUZZDIR] [--integration BUILDDIR]
#                      [--crash BUILDDIR]
#
# Unit tests: each cmocka binary in each build directory (normal and
# ASan+UBSan); cases are counted from cmocka's summary, and a binary that
# dies without one (a sanitizer report, a crash) counts as one failure.
# Fuzz smoke: each libFuzzer target runs FUZZ_SECONDS (default 5) from its
# seed corpus.  Integration: each tests/integration/test_*.py runs against
# the programs of BUILDDIR and prints its own "N passed, N failed".  Crash:
# disk-full cases and 2 kill -9 rounds (tests/crash/run.sh).  Lint:
# cppcheck and clang-format on src/ are one case each.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
passed=0
failed=0
failures=
fuzzdir=
itdir=
crashdir=
dirs=

while [ $# -gt 0 ]; do
	case "$1" in
	--fuzz) fuzzdir=$2; shift 2 ;;
	--integration) itdir=$2; shift 2 ;;
	--crash) crashdir=$2; shift 2 ;;
	*) dirs="$dirs $1"; shift ;;
	esac
done

log=$(mktemp -d "${TMPDIR:-/tmp}/msgtrk-tests.XXXXXX")
trap 'rm -rf "$log"' EXIT

record() {	# record NAME PASSED FAILED
	passed=$((passed + $2))
	failed=$((failed + $3))
	if [ "$3" -gt 0 ]; then
		failures="$failures $1"
	fi
}

export GOLDEN_DIR="$top/tests/golden"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

for d in $dirs; do
	for t in "$d"/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		name="$(basename "$d")/$(basename "$t")"
		out="$log/$(basename "$d")-$(basename "$t").log"
		timeout 300 "$t" >"$out" 2>&1
		rc=$?
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" |
		    awk '{s += $1} END {print s + 0}')
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$out" |
		    awk '{s += $1} END {print s + 0}')
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1
		fi
		echo "$name: $p passed, $f failed"
		if [ "$f" -gt 0 ]; then
			grep -E '^\[  (FAILED|ERROR) +\]|ERROR|error:|runtime error|Sanitizer' \
			    "$out" | head -40
		fi
		record "$name" "$p" "$f"
	done
done

if [ -n "$fuzzdir" ]; then
	secs=${FUZZ_SECONDS:-5}
	# Crash inputs outlive the run when FUZZ_ARTIFACTS names a directory.
	art=${FUZZ_ARTIFACTS:-$log}
	mkdir -p "$art"
	for t in "$fuzzdir"/fuzz_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		name=$(basename "$t")
		seeds="$top/tests/fuzz/corpus/${name#fuzz_}"
		work="$log/corpus-$name"
		mkdir -p "$work"
		# New inputs go to $work; the committed seeds are only read.
		if timeout $((secs + 60)) "$t" -max_total_time="$secs" \
		    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		    -artifact_prefix="$art/$name-" "$work" "$seeds" \
		    >"$log/$name.log" 2>&1; then
			runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
			    "$log/$name.log")
			echo "fuzz/$name: passed (${runs:-?} runs in ${secs}s)"
			record "fuzz/$name" 1 0
		else
			echo "fuzz/$name: FAILED (inputs under $art/$name-*)"
			grep -E 'ERROR|SUMMARY|runtime error|Test unit written' \
			    "$log/$name.log" | head -20
			record "fuzz/$name" 0 1
		fi
	done
fi

# run_counted NAME COMMAND...: a program that prints its own
# "N passed, N failed" (the integration suites, the bench smoke run).
run_counted() {
	name=$1
	shift
	out="$log/$(echo "$name" | tr / -).log"
	timeout 900 "$@" >"$out" 2>&1
	rc=$?
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
	p=${line%% passed*}
	f=${line#*, }
	f=${f%% failed*}
	[ -n "$line" ] || { p=0; f=0; }
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	echo "$name: $p passed, $f failed"
	if [ "$f" -gt 0 ]; then
		grep -E -A30 '^FAIL' "$out" | head -80
		[ -n "$line" ] || tail -20 "$out"
	fi
	record "$name" "$p" "$f"
}

if [ -n "$itdir" ]; then
	for t in "$top"/tests/integration/test_*.py; do
		[ -f "$t" ] || continue
		MSGTRK_BUILD=$itdir run_counted \
		    "integration/$(basename "$t" .py)" python3 "$t"
	done
	run_counted bench/smoke "$top/bench/smoke.sh" "$itdir"
fi
if [ -n "$crashdir" ]; then
	run_counted crash "$top/tests/crash/run.sh" "$crashdir" 2 300
fi

# Lint: the engineering bar asks for no cppcheck warnings on src/ and the
# project's clang-format.
if command -v cppcheck >/dev/null 2>&1; then
	if cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	    --std=c11 --inline-suppr -I "$top/include" "$top/src" \
	    >"$log/cppcheck.log" 2>&1; then
		echo "lint/cppcheck: passed"
		record lint/cppcheck 1 0
	else
		echo "lint/cppcheck: FAILED"
		head -40 "$log/cppcheck.log"
		record lint/cppcheck 0 1
	fi
fi
if command -v clang-format >/dev/null 2>&1; then
	files=$(cd "$top" && find src include tests -name '*.[ch]' | sort)
	if (cd "$top" && clang-format --dry-run --Werror $files) \
	    >"$log/format.log" 2>&1; then
		echo "lint/clang-format: passed"
		record lint/clang-format 1 0
	else
		echo "lint/clang-format: FAILED (run: make format)"
		grep -E '^[^ ].*: (error|warning)' "$log/format.log" |
		    sed 's/: error:.*//' | sort -u | head -20
		record lint/clang-format 0 1
	fi
fi

if [ -n "$failures" ]; then
	echo "failed:$failures"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
