#!/bin/bash
# bench/run-all.sh [BUILD]: what `make bench` runs.  Runs smtp-accept
# (msgtrkd vs Postfix vs smtp-sink over five workloads: plain, tracked,
# tls, rcpt10, big; 1, 10 and 50 sessions; 3 alternating rounds; accepted
# and end-to-end rates and CPU ms per message of both servers), bulkload
# (100k and 1M records, with in-process lookups), mtqp-load against
# msgtrkd over each store with its count checked against the server's log
# (mtqp-logcheck), and conn-memory; then rewrites bench/RESULTS.md with
# the machine, the commit, the command lines, every output line and the
# tables of medians and ratios (bench/summarize).
# Duration on the 2-core machine: 23 minutes (126 SMTP runs, most of it
# Postfix; the last two full runs took 22 min 42 s and 23 min 7 s); each
# run writes its own at the top of RESULTS.md.  Exit status non-zero
# if any step failed (the numbers of the others are still written).
#
# Environment (defaults: the full run): smtp-accept's BENCH_* variables
# (BENCH_WORKLOADS, BENCH_SESSIONS, BENCH_ROUNDS, BENCH_MESSAGES...),
# BENCH_STORE_SIZES="100000 1000000" (bulkload and MTQP stores),
# MTQP_CONNS=10 MTQP_DEPTH=16 MTQP_SECONDS=10, BENCH_CONN_SESSIONS=10000
# (conn-memory), BENCH_RESULTS=bench/RESULTS.md (where to write; a small
# trial run should write elsewhere).
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-${BUILD:-$(cd "$BENCH_DIR/.." && pwd)/build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
. "$BENCH_DIR/lib.sh"

work=$(mktemp -d /tmp/msgtrk-benchall-XXXXXX)
chmod 755 "$work"
trap '[ -n "${MSGTRKD_PID:-}" ] && stop_pid "$MSGTRKD_PID"; rm -rf "$work"' EXIT
out=$work/runs.md
: >"$out"
status=0
started=$(date +%s)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
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
	"$@" 2>&1 | tee -a "$out"
	if [ "${PIPESTATUS[0]}" != 0 ]; then
		status=1
		echo "(failed)" >>"$out"
	fi
	echo '```' >>"$out"
}

# mtqp_over DATA_DIR N: both MTQP loads against msgtrkd over the store in
# DATA_DIR, then the tool's counts checked against the server's log: its
# "mtqp track" lines inside each measured window (bench/mtqp-logcheck,
# within 3 %).
mtqp_over() {
	local port rc log=$1/../msgtrkd.log
	port=$(free_port)
	: >"$log"
	msgtrkd_start "$1/.." "" "$port" "" || return 1
	{
		"$MTQP_LOAD" -p "$port" -c "$MTQP_CONNS" -P "$MTQP_DEPTH" \
		    -t "$MTQP_SECONDS" -n "$2" &&
		    "$MTQP_LOAD" -p "$port" -c "$MTQP_CONNS" -P 1 \
		    -t "$MTQP_SECONDS" -n "$2"
	} | tee "$1/../load.out"
	rc=${PIPESTATUS[0]}
	stop_pid "$MSGTRKD_PID"
	MSGTRKD_PID=
	echo "\$ mtqp-logcheck $log load.out"
	python3 "$BENCH_DIR/mtqp-logcheck" "$log" "$1/../load.out" || rc=1
	return $rc
}

bench_tools "$work/bin" || { echo "cannot build the bench tools" >&2; exit 1; }
export SMTP_LOAD
commit=$(git -C "$BENCH_DIR/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$BENCH_DIR/.." diff --quiet HEAD 2>/dev/null || commit="$commit (with uncommitted changes)"
export BENCH_OUT=$work/smtp.tsv
: >"$BENCH_OUT"
step "SMTP accept and end to end (A = msgtrkd, B = Postfix, sink = smtp-sink)" \
    "$BENCH_DIR/smtp-accept"
for n in ${BENCH_STORE_SIZES:-100000 1000000}; do
	mkdir -p "$work/s$n/data"
	step "Bulk load, $n records, and in-process lookups" \
	    "$BULKLOAD" -d "$work/s$n/data" -n "$n" -l 10
	step "MTQP load over $n records" mtqp_over "$work/s$n/data" "$n"
	rm -rf "$work/s$n"
done
step "RSS per idle SMTP session" "$BENCH_DIR/conn-memory" \
    -n "${BENCH_CONN_SESSIONS:-10000}"
elapsed=$(($(date +%s) - started))
{
	echo "# Benchmark results"
	echo
	echo "Written by \`make bench\` (bench/run-all.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'),"
	echo "in $((elapsed / 60)) min $((elapsed % 60)) s."
	echo "Commit: $commit."
	echo
	echo "## Machine"
	echo
	echo "- CPUs: $(nproc) ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1))"
	echo "- Memory: $(free -m | awk '/^Mem:/ { print $2 " MiB" }')"
	echo "- Disk: $(df -h /tmp | awk 'NR == 2 { print $1 ", " $2 " (/tmp)" }')"
	echo "- Kernel: $(uname -r)"
	echo "- Postfix: $(postconf -d -h mail_version 2>/dev/null)"
	echo "- Load average before the run: $load0"
	echo
	echo "## How it was measured"
	echo
	echo "The SMTP client is bench/smtp-load for every cell (smtp-accept's header"
	echo "says what each workload sends, and how CPU time is read); the command"
	echo "lines are the \"workload\" lines of the SMTP run below.  Accept: until"
	echo "smtp-load has every 250 and exits; end to end (e2e): until smtp-sink"
	echo "has every message (and, for msgtrkd, every tracking record says"
	echo "transferred or relayed).  MTQP: mtqp-load counts the TRACKs sent in its"
	echo "measured window; mtqp-logcheck counts msgtrkd's own \"mtqp track\" log"
	echo "lines in the same window (they must agree within 3 %)."
	echo
	echo "## Summary (medians of the rounds, and ratios)"
	echo
	python3 "$BENCH_DIR/summarize" --format markdown "$BENCH_OUT" ||
	    echo "(no SMTP results)"
	echo
	echo "## Runs"
	cat "$out"
} >"$work/RESULTS.md"
results=${BENCH_RESULTS:-$BENCH_DIR/RESULTS.md}
cp "$work/RESULTS.md" "$results"
echo "bench: $((elapsed / 60)) min $((elapsed % 60)) s; $results written"
exit $status
