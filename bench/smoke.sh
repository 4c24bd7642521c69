#!/bin/bash
# bench/smoke.sh [BUILD]: a short run of every bench tool for make test:
# tiny counts, a few seconds each, no timing assertions, exit status only.
# Prints "ok NAME" or "FAIL NAME" per case and, last, "N passed, N failed";
# exits non-zero if any case failed.
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-${BUILD:-$(cd "$BENCH_DIR/.." && pwd)/build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
. "$BENCH_DIR/lib.sh"
export BENCH_WAIT=20

work=$(mktemp -d /tmp/msgtrk-smoke-XXXXXX)
chmod 755 "$work"
passed=0
failed=0
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do stop_pid "$p"; done
	[ -n "${MSGTRKD_PID:-}" ] && stop_pid "$MSGTRKD_PID"
	rm -rf "$work"
}
trap cleanup EXIT

# check NAME COMMAND...: one case; its output is shown only on failure.
check() {
	local name=$1 log=$work/case.log
	shift
	if "$@" >"$log" 2>&1; then
		echo "ok   bench/$name"
		passed=$((passed + 1))
	else
		echo "FAIL bench/$name"
		tail -n 20 "$log" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
}
# fails NAME COMMAND...: a case that passes when COMMAND fails.
fails() {
	local name=$1
	shift
	check "$name" bash -c '! "$@"' _ "$@"
}

tiny_accept() { # TARGETS
	BENCH_MESSAGES=20 BENCH_SESSIONS="1 4" BENCH_ROUNDS=1 \
	    BENCH_TARGETS=$1 BENCH_E2E_TIMEOUT=60 "$BENCH_DIR/smtp-accept"
}

fake_mtqp_load() {
	local port rc
	port=$(free_port)
	python3 "$BENCH_DIR/fake-mtqp.py" "$port" &
	local pid=$!
	PIDS+=("$pid")
	wait_port "$port" "$pid" || return 1
	"$MTQP_LOAD" -p "$port" -c 3 -P 4 -t 1 -n 100
	rc=$?
	stop_pid "$pid"
	return $rc
}

fake_mtqp_err() { # mtqp-load must fail when answers are not +OK
	local port rc
	port=$(free_port)
	python3 - "$port" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
c, _ = s.accept(); c.settimeout(10); c.send(b"+OK/MTQP x\r\n")
try:
    while c.recv(4096):
        c.send(b"-ERR/noinfo no such message\r\n")
except OSError:
    pass
PY
	local pid=$!
	PIDS+=("$pid")
	wait_port "$port" "$pid" || return 1
	"$MTQP_LOAD" -p "$port" -c 1 -P 2 -t 1 -n 100
	rc=$?
	stop_pid "$pid"
	[ $rc = 1 ]
}

msgtrkd_mtqp_load() {
	local d=$work/mtqp mport rc
	mkdir -p "$d/data"
	"$BULKLOAD" -d "$d/data" -n 2000 -b 500 || return 1
	mport=$(free_port)
	msgtrkd_start "$d" "" "$mport" "" || return 1
	"$MTQP_LOAD" -p "$mport" -c 4 -P 8 -t 1 -n 2000
	rc=$?
	stop_pid "$MSGTRKD_PID"
	MSGTRKD_PID=
	return $rc
}

sink_conn_memory() {
	local port rc
	port=$(free_port)
	smtp-sink -u nobody "127.0.0.1:$port" 1024 >/dev/null 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	wait_port "$port" "$pid" || return 1
	"$BENCH_DIR/conn-memory" -n 50 --pid "$pid" --port "$port"
	rc=$?
	stop_pid "$pid"
	return $rc
}

check tools-build bench_tools "$work/bin"
check postfix-instance bash -c '
	d=$1/pf; "$2/postfix/instance.sh" start "$d" "$3" "$4" &&
	    "$2/postfix/instance.sh" stop "$d"' _ "$work" "$BENCH_DIR" \
    "$(free_port)" "$(free_port)"
fails postfix-instance-usage "$BENCH_DIR/postfix/instance.sh" start
check smtp-accept-sink-postfix tiny_accept "sink postfix"
check smtp-accept-msgtrkd tiny_accept msgtrkd
check bulkload-lookup "$BULKLOAD" -d "$work" -n 3000 -b 700 -l 1
fails bulkload-existing-store "$BULKLOAD" -d "$work" -n 10
fails bulkload-bad-count "$BULKLOAD" -d "$work/x" -n 0
fails bulkload-no-dir "$BULKLOAD" -n 10
fails bulkload-missing-dir "$BULKLOAD" -d "$work/missing/dir" -n 10
check mtqp-load-fake fake_mtqp_load
check mtqp-load-negative-answers fake_mtqp_err
fails mtqp-load-refused "$MTQP_LOAD" -p "$(free_port)" -c 2 -t 1
fails mtqp-load-usage "$MTQP_LOAD" -p 0
check mtqp-load-msgtrkd msgtrkd_mtqp_load
check conn-memory-sink sink_conn_memory
check conn-memory-msgtrkd "$BENCH_DIR/conn-memory" -n 100
fails conn-memory-usage "$BENCH_DIR/conn-memory" -n 0
echo "$passed passed, $failed failed"
[ $failed = 0 ]
