#!/bin/bash
# bench/smoke.sh [BUILD]: a short run of every bench tool for make test:
# tiny counts, a few seconds each, no timing assertions, exit status only.
# Prints "ok NAME" or "FAIL NAME" per case and, last, "N passed, N failed";
# exits non-zero if any case failed.  BENCH_SMOKE_ONLY="NAME..." runs only
# those cases.
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
# BENCH_SMOKE_ONLY="NAME..." runs only those cases (and tools-build).
check() {
	local name=$1 log=$work/case.log
	shift
	if [ -n "${BENCH_SMOKE_ONLY:-}" ] && [ "$name" != tools-build ] &&
	    [[ " $BENCH_SMOKE_ONLY " != *" $name "* ]]; then
		return 0
	fi
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

tiny_accept() { # TARGETS WORKLOADS
	BENCH_MESSAGES=20 BENCH_SESSIONS=2 BENCH_ROUNDS=1 \
	    BENCH_TARGETS=$1 BENCH_WORKLOADS=$2 BENCH_E2E_TIMEOUT=60 \
	    "$BENCH_DIR/smtp-accept"
}

# smtp-load against smtp-sink: plain, then DSN parameters, 3 recipients,
# 20 KiB bodies and no PIPELINING.
sink_smtp_load() {
	local port rc
	port=$(free_port)
	sink_start "$work" "$port" || return 1
	PIDS+=("$SINK_PID")
	"$SMTP_LOAD" -p "$port" -s 3 -m 30 &&
	    "$SMTP_LOAD" -p "$port" -s 2 -m 10 -D -r 3 -l 20480 -X
	rc=$?
	stop_pid "$SINK_PID"
	return $rc
}

# A server that checks what smtp-load sends: every message's SIZE= equals
# its size, it ends in CRLF, has no bare CR or LF, no line over 998
# octets, no line starting with "."; the header and body split at the
# first empty line; BYTES= is the body size the test asked for.  Exits 1
# at the first bad message (the client then fails).
body_check_server() { # PORT BYTES
	python3 - "$1" "$2" <<'PY'
import re, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
want = int(sys.argv[2])
while True:
    c, _ = s.accept(); c.settimeout(10); c.send(b"220 check ESMTP\r\n")
    f = c.makefile("rb"); size = None
    try:
        for line in f:
            v = line[:4].upper()
            if v == b"EHLO":
                c.send(b"250-check\r\n250-PIPELINING\r\n250 SIZE 100000000\r\n")
            elif v == b"MAIL":
                size = int(re.search(rb"SIZE=(\d+)", line).group(1))
                c.send(b"250 ok\r\n")
            elif v == b"RCPT":
                c.send(b"250 ok\r\n")
            elif v == b"DATA":
                c.send(b"354 go\r\n")
                data = b""
                while not data.endswith(b"\r\n.\r\n") and data != b".\r\n":
                    data += f.readline()
                msg = data[:-3]
                head, sep, body = msg.partition(b"\r\n\r\n")
                ok = (len(msg) == size and msg.endswith(b"\r\n") and
                      sep and len(body) == want and
                      b"\r" not in msg.replace(b"\r\n", b"") and
                      b"\n" not in msg.replace(b"\r\n", b"") and
                      all(len(l) <= 998 and not l.startswith(b".")
                          for l in msg.split(b"\r\n")))
                if not ok:
                    print("bad message: size %s/%d body %d/%d" % (
                        size, len(msg), len(body), want), file=sys.stderr)
                    sys.exit(1)
                c.send(b"250 ok\r\n")
            elif v == b"QUIT":
                c.send(b"221 bye\r\n"); break
            else:
                c.send(b"250 ok\r\n")
    except OSError:
        pass
    c.close()
PY
}

# smtp-load's messages, for body sizes around the line length.
smtp_load_body_shape() {
	local port pid rc=0 n
	for n in 0 2 3 77 78 79 80 157 158 4096; do
		port=$(free_port)
		body_check_server "$port" "$n" &
		pid=$!
		PIDS+=("$pid")
		wait_port "$port" "$pid" || return 1
		"$SMTP_LOAD" -p "$port" -m 2 -l "$n" -w 5 || rc=1
		stop_pid "$pid"
		[ $rc = 0 ] || { echo "body size $n"; return 1; }
	done
}

# smtp-load FLAG against smtp-sink, which offers neither STARTTLS nor
# MTRK: must fail.
sink_smtp_load_lacks() { # FLAG
	local port rc
	port=$(free_port)
	sink_start "$work" "$port" || return 1
	PIDS+=("$SINK_PID")
	"$SMTP_LOAD" -p "$port" -m 2 "$1"
	rc=$?
	stop_pid "$SINK_PID"
	[ $rc = 1 ]
}

# A server that refuses every RCPT (550; then 554 to DATA): every message
# must count as failed and smtp-load must exit 1.
smtp_load_rejected() {
	local port rc
	port=$(free_port)
	python3 - "$port" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
while True:  # every connection (wait_port's probe is one), one at a time
    c, _ = s.accept(); c.settimeout(10); c.send(b"220 fake ESMTP\r\n")
    try:
        for line in c.makefile("rb"):
            v = line.split(b" ")[0].split(b":")[0].upper().strip()
            c.send({b"EHLO": b"250-fake\r\n250 PIPELINING\r\n",
                    b"MAIL": b"250 ok\r\n",
                    b"RCPT": b"550 5.1.1 no such user\r\n",
                    b"DATA": b"554 5.5.1 no valid recipients\r\n",
                    b"RSET": b"250 ok\r\n",
                    b"QUIT": b"221 bye\r\n"}.get(v, b"500 ?\r\n"))
            if v == b"QUIT":
                break
    except OSError:
        pass
    c.close()
PY
	local pid=$!
	PIDS+=("$pid")
	wait_port "$port" "$pid" || return 1
	"$SMTP_LOAD" -p "$port" -m 3 >"$work/rejected.out"
	rc=$?
	stop_pid "$pid"
	cat "$work/rejected.out"
	[ $rc = 1 ] && grep -q ' accepted=0 failed=3 ' "$work/rejected.out"
}

# smtp-load with STARTTLS (certificate verified) and MTRK against
# msgtrkd; then mtqp-load TRACKs those very messages with their secrets
# (bench_key.h): every answer must be +OK, so every MTRK= sent was a valid
# certifier.  The MTQP count is checked against msgtrkd's log, and the
# count doubled must be caught.
msgtrkd_smtp_load_tls_mtrk() {
	local d=$work/tlsmtrk sport sp mp rc
	mkdir -p "$d"
	bench_cert "$d/tls" || return 1
	sport=$(free_port)
	sink_start "$d" "$sport" || return 1
	PIDS+=("$SINK_PID")
	sp=$(free_port)
	mp=$(free_port)
	MSGTRKD_CONF_EXTRA="tls_cert_file = $d/tls/cert.pem
tls_key_file = $d/tls/key.pem" msgtrkd_start "$d/m" "$sp" "$mp" "$sport" ||
	    return 1
	"$SMTP_LOAD" -p "$sp" -s 3 -m 40 -r 2 -T -C "$d/tls/cert.pem" \
	    -N msgtrkd.bench.test -K &&
	    "$MTQP_LOAD" -p "$mp" -c 2 -P 4 -t 1 -n 40 >"$d/load.out"
	rc=$?
	cat "$d/load.out"
	stop_pid "$MSGTRKD_PID"
	MSGTRKD_PID=
	stop_pid "$SINK_PID"
	[ $rc = 0 ] || return 1
	python3 "$BENCH_DIR/mtqp-logcheck" "$d/m/msgtrkd.log" "$d/load.out" ||
	    return 1
	awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^answers=/) {
		split($i, a, "="); $i = "answers=" a[2] * 2 } print }' \
	    "$d/load.out" >"$d/doubled.out"
	! python3 "$BENCH_DIR/mtqp-logcheck" "$d/m/msgtrkd.log" \
	    "$d/doubled.out"
}

# A certificate that does not match -N must fail the handshake.
msgtrkd_smtp_load_badname() {
	local d=$work/badname sp rc
	mkdir -p "$d"
	bench_cert "$d/tls" || return 1
	sp=$(free_port)
	MSGTRKD_CONF_EXTRA="tls_cert_file = $d/tls/cert.pem
tls_key_file = $d/tls/key.pem" msgtrkd_start "$d/m" "$sp" "" "" || return 1
	"$SMTP_LOAD" -p "$sp" -m 2 -T -C "$d/tls/cert.pem" -N other.test
	rc=$?
	stop_pid "$MSGTRKD_PID"
	MSGTRKD_PID=
	[ $rc = 1 ]
}

# The CPU readers: /proc, and a cgroup v2 if one can be made here.
cpu_readers() {
	local cg ms
	ms=$(cpu_proc_ms $$) && [ "$ms" -ge 0 ] || return 1
	ms=$(cpu_tree_ms $$) && [ "$ms" -ge 0 ] || return 1
	if cg=$(cg_new "msgtrk-bench-smoke-$$"); then
		if ! cg_run "$cg" sh -c \
		    'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done' ||
		    ! ms=$(cg_usage_ms "$cg") || [ "$ms" -le 0 ]; then
			cg_remove "$cg"
			return 1
		fi
		cg_remove "$cg" || return 1
		echo "cgroup: $ms ms"
	else
		echo "no writable cgroup v2: Postfix's CPU falls back to cpu_tree_ms"
	fi
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
while True:  # every connection (wait_port's probe is one), one at a time
    c, _ = s.accept(); c.settimeout(10); c.send(b"+OK/MTQP x\r\n")
    try:
        while c.recv(4096):
            c.send(b"-ERR/noinfo no such message\r\n")
    except OSError:
        pass
    c.close()
PY
	local pid=$!
	PIDS+=("$pid")
	wait_port "$port" "$pid" || return 1
	"$MTQP_LOAD" -p "$port" -c 1 -P 2 -t 1 -n 100 >"$work/negative.out"
	rc=$?
	stop_pid "$pid"
	cat "$work/negative.out"
	# Failed for the -ERR answers, not for want of a server.
	[ $rc = 1 ] && grep -q ' ok=0 err=[1-9][0-9]* ' "$work/negative.out"
}

msgtrkd_mtqp_load() {
	local d=$work/mtqp mport rc
	mkdir -p "$d/data"
	"$BULKLOAD" -d "$d/data" -n 2000 -b 500 || return 1
	mport=$(free_port)
	msgtrkd_start "$d" "" "$mport" "" || return 1
	"$MTQP_LOAD" -p "$mport" -c 4 -P 8 -t 1 -n 2000 >"$d/load.out"
	rc=$?
	cat "$d/load.out"
	stop_pid "$MSGTRKD_PID"
	MSGTRKD_PID=
	# Its count must agree with msgtrkd's own log over the window.
	[ $rc = 0 ] && python3 "$BENCH_DIR/mtqp-logcheck" "$d/msgtrkd.log" \
	    "$d/load.out"
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
export SMTP_LOAD
check postfix-instance bash -c '
	d=$1/pf; "$2/postfix/instance.sh" start "$d" "$3" "$4" &&
	    "$2/postfix/instance.sh" stop "$d"' _ "$work" "$BENCH_DIR" \
    "$(free_port)" "$(free_port)"
fails postfix-instance-usage "$BENCH_DIR/postfix/instance.sh" start
check smtp-accept-sink-postfix tiny_accept "sink postfix" "plain tls"
check smtp-accept-msgtrkd tiny_accept msgtrkd "tracked tls rcpt10 big"
check smtp-load-sink sink_smtp_load
check smtp-load-sink-no-starttls sink_smtp_load_lacks -T
check smtp-load-sink-no-mtrk sink_smtp_load_lacks -K
check smtp-load-rejected smtp_load_rejected
check smtp-load-body-shape smtp_load_body_shape
fails smtp-load-body-one-octet "$SMTP_LOAD" -p 25 -l 1
check smtp-load-msgtrkd-tls-mtrk msgtrkd_smtp_load_tls_mtrk
check smtp-load-tls-wrong-name msgtrkd_smtp_load_badname
fails smtp-load-refused "$SMTP_LOAD" -p "$(free_port)" -m 1
fails smtp-load-usage "$SMTP_LOAD" -p 0
fails smtp-load-usage-ca-without-tls "$SMTP_LOAD" -p 25 -C /dev/null
check cpu-readers cpu_readers
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
fails mtqp-logcheck-no-line python3 "$BENCH_DIR/mtqp-logcheck" /dev/null \
    /dev/null
check conn-memory-sink sink_conn_memory
check conn-memory-msgtrkd "$BENCH_DIR/conn-memory" -n 100
fails conn-memory-usage "$BENCH_DIR/conn-memory" -n 0
echo "$passed passed, $failed failed"
[ $failed = 0 ]
