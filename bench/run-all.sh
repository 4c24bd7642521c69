#!/bin/bash
# bench/run-all.sh [BUILD]: what `make bench` runs.  Runs smtp-accept
# (msgtrkd vs Postfix vs smtp-sink), bulkload (100k and 1M records, with
# in-process lookups), mtqp-load against msgtrkd over each store, and
# conn-memory; then rewrites bench/RESULTS.md with the machine, the
# command lines and every output line.  Takes about 20 minutes here (Postfix at 1
# session is the slow part).  Exit status non-zero if any step failed (the
# numbers of the others are still written).
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-${BUILD:-$(cd "$BENCH_DIR/.." && pwd)/build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
. "$BENCH_DIR/lib.sh"

work=$(mktemp -d /tmp/msgtrk-benchall-XXXXXX)
chmod 755 "$work"
trap '[ -n "${MSGTRKD_PID:-}" ] && stop_pid "$MSGTRKD_PID"; rm -rf "$work"' EXIT
out=$work/RESULTS.md
status=0
# Two MTQP loads: throughput with 16 TRACKs pipelined per connection (the
# latency is then mostly queueing: 160 in flight), and latency with one
# TRACK in flight per connection.
MTQP_CONNS=${MTQP_CONNS:-10}
MTQP_DEPTH=${MTQP_DEPTH:-16}
MTQP_SECONDS=${MTQP_SECONDS:-10}

# step TITLE COMMAND...: runs it, tees its output into a code block.
step() {
	local title=$1
	shift
	{
		echo
		echo "### $title"
		echo
		echo '```'
		echo "\$ $*"
	} >>"$out"
	if ! "$@" 2>&1 | tee -a "$out"; then
		status=1
		echo "(failed)" >>"$out"
	fi
	echo '```' >>"$out"
}

mtqp_over() { # DATA_DIR N
	local port rc
	port=$(free_port)
	msgtrkd_start "$1/.." "" "$port" "" || return 1
	"$MTQP_LOAD" -p "$port" -c "$MTQP_CONNS" -P "$MTQP_DEPTH" \
	    -t "$MTQP_SECONDS" -n "$2" &&
	    "$MTQP_LOAD" -p "$port" -c "$MTQP_CONNS" -P 1 \
	    -t "$MTQP_SECONDS" -n "$2"
	rc=$?
	stop_pid "$MSGTRKD_PID"
	MSGTRKD_PID=
	return $rc
}

bench_tools "$work/bin" || { echo "cannot build the bench tools" >&2; exit 1; }
{
	echo "# Benchmark results (issue 5)"
	echo
	echo "Written by \`make bench\` (bench/run-all.sh) on $(date -u '+%Y-%m-%d %H:%M UTC')."
	echo "Commit: $(git -C "$BENCH_DIR/.." rev-parse --short HEAD 2>/dev/null || echo unknown)."
	echo
	echo "## Machine"
	echo
	echo "- CPUs: $(nproc) ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1))"
	echo "- Memory: $(free -m | awk '/^Mem:/ { print $2 " MiB" }')"
	echo "- Disk: $(df -h /tmp | awk 'NR == 2 { print $1 ", " $2 " (/tmp)" }')"
	echo "- Kernel: $(uname -r)"
	echo "- Postfix: $(postconf -d -h mail_version 2>/dev/null)"
	echo
	echo "## Runs"
} >"$out"
step "SMTP accept and end to end (A = msgtrkd, B = Postfix, sink = smtp-sink)" \
    "$BENCH_DIR/smtp-accept"
for n in 100000 1000000; do
	mkdir -p "$work/s$n/data"
	step "Bulk load, $n records, and in-process lookups" \
	    "$BULKLOAD" -d "$work/s$n/data" -n "$n" -l 10
	step "MTQP load over $n records" mtqp_over "$work/s$n/data" "$n"
	rm -rf "$work/s$n"
done
step "RSS per idle SMTP session" "$BENCH_DIR/conn-memory" -n 10000
cp "$out" "$BENCH_DIR/RESULTS.md"
exit $status
