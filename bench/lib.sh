# bench/lib.sh: shell helpers shared by the bench scripts (sourced).
# Everything started here is stopped by PID (or `postfix -c DIR stop`),
# every wait is bounded, and traffic stays on 127.0.0.1.

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "$0")" && pwd)}
TOP=${TOP:-$(cd "$BENCH_DIR/.." && pwd)}
BUILD=${BUILD:-$TOP/build}
MSGTRKD=${MSGTRKD:-$BUILD/msgtrkd}
# Seconds: the bound on waiting for a port or a process.
BENCH_WAIT=${BENCH_WAIT:-20}

# Prints a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Seconds since the epoch, microseconds.
now() {
	printf '%s\n' "$EPOCHREALTIME"
}

# wait_port PORT [PID]: until something accepts on 127.0.0.1:PORT
# (bounded); fails at once if process PID has exited.
wait_port() {
	_end=$(($(date +%s) + BENCH_WAIT))
	while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
			echo "process $2 exited before 127.0.0.1:$1 opened" >&2
			return 1
		fi
		[ "$(date +%s)" -lt "$_end" ] || {
			echo "timed out waiting for 127.0.0.1:$1" >&2
			return 1
		}
		sleep 0.05
	done
}

# stop_pid PID: SIGTERM, wait (bounded), then SIGKILL.
stop_pid() {
	kill -0 "$1" 2>/dev/null || return 0
	kill "$1" 2>/dev/null
	_i=0
	while kill -0 "$1" 2>/dev/null && [ $_i -lt $((BENCH_WAIT * 20)) ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# sink_start DIR PORT: smtp-sink (no queue, no fsync) counting messages
# into DIR/sink.out; sets SINK_PID.
sink_start() {
	smtp-sink -c -u nobody "127.0.0.1:$2" 1024 >"$1/sink.out" 2>&1 &
	SINK_PID=$!
	wait_port "$2" "$SINK_PID"
}

# sink_count DIR: messages the sink has received ("mesg=N" counter).
sink_count() {
	_n=$(tr '\r' '\n' <"$1/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' |
	    tail -n 1)
	echo "${_n:-0}"
}

# msgtrkd_start DIR SMTP_PORT MTQP_PORT RELAY_PORT: msgtrkd in the
# foreground, data in DIR/data, every domain routed to the sink on
# RELAY_PORT; sets MSGTRKD_PID.  An empty port turns that listener off
# (or, for RELAY_PORT, the routes file).  $MSGTRKD_CONF_EXTRA, if set, is
# appended to the configuration (e.g. tls_cert_file/tls_key_file lines);
# $MSGTRKD_CGROUP, if set, is a cgroup v2 directory msgtrkd runs in.
msgtrkd_start() {
	mkdir -p "$1"
	{
		echo "hostname = msgtrkd.bench.test"
		echo "data_dir = $1/data"
		[ -n "$2" ] && echo "smtp_listen = 127.0.0.1:$2" ||
		    echo "smtp_listen = none"
		[ -n "$3" ] && echo "mtqp_listen = 127.0.0.1:$3" ||
		    echo "mtqp_listen = none"
		echo "retry_schedule = 1s"
		echo "purge_interval = 1h"
		if [ -n "$4" ]; then
			echo "* [127.0.0.1]:$4" >"$1/routes"
			echo "routes = $1/routes"
		fi
		[ -n "${MSGTRKD_CONF_EXTRA:-}" ] && printf '%s\n' \
		    "$MSGTRKD_CONF_EXTRA"
	} >"$1/msgtrkd.conf"
	# In cgroup $MSGTRKD_CGROUP if set (the same PID: the subshell execs).
	(
		[ -z "${MSGTRKD_CGROUP:-}" ] ||
		    echo "$BASHPID" >"$MSGTRKD_CGROUP/cgroup.procs" || exit 1
		exec "$MSGTRKD" -f -c "$1/msgtrkd.conf"
	) >>"$1/msgtrkd.log" 2>&1 &
	MSGTRKD_PID=$!
	wait_port "${2:-$3}" "$MSGTRKD_PID" || {
		tail -n 20 "$1/msgtrkd.log" >&2
		stop_pid "$MSGTRKD_PID"
		MSGTRKD_PID=
		return 1
	}
}

# bench_tools OUTDIR: sets BULKLOAD, MTQP_LOAD and SMTP_LOAD to the C
# tools: Meson's ($BUILD/bench/, once the top-level meson.build has
# subdir('bench')), else compiled here into OUTDIR with cc and pkg-config.
bench_tools() {
	if [ -x "$BUILD/bench/bulkload" ] && [ -x "$BUILD/bench/mtqp-load" ] &&
	    [ -x "$BUILD/bench/smtp-load" ]; then
		BULKLOAD=$BUILD/bench/bulkload
		MTQP_LOAD=$BUILD/bench/mtqp-load
		SMTP_LOAD=$BUILD/bench/smtp-load
		return 0
	fi
	_cf="-std=c17 -O2 -D_GNU_SOURCE -I$TOP/include -I$TOP/src -I$BENCH_DIR"
	_lib="$TOP/src/lib/str.c $TOP/src/lib/buf.c $TOP/src/lib/b64.c"
	_lib="$_lib $TOP/src/lib/mtrk.c"
	_k="$BENCH_DIR/bench_key.c $BENCH_DIR/bench_hist.c $BENCH_DIR/bench_util.c"
	_pc=$(pkg-config --cflags --libs sqlite3 libcrypto) || return 1
	mkdir -p "$1"
	# shellcheck disable=SC2086
	${CC:-cc} $_cf -o "$1/bulkload" "$BENCH_DIR/bulkload.c" $_k \
	    "$TOP/src/store/store.c" "$TOP/src/store/store_sqlite.c" $_lib \
	    $_pc || return 1
	# shellcheck disable=SC2086
	${CC:-cc} $_cf -o "$1/mtqp-load" "$BENCH_DIR/mtqp-load.c" $_k $_lib \
	    $_pc || return 1
	_pc=$(pkg-config --cflags --libs libssl libcrypto) || return 1
	# shellcheck disable=SC2086
	${CC:-cc} $_cf -o "$1/smtp-load" "$BENCH_DIR/smtp-load.c" $_k $_lib \
	    $_pc || return 1
	BULKLOAD=$1/bulkload
	MTQP_LOAD=$1/mtqp-load
	SMTP_LOAD=$1/smtp-load
}

# track_pending DATA_DIR: "TRACKED PENDING": tracking records in the
# store, and those not yet transferred (3) or relayed (4); read-only.
track_pending() {
	_db=$1/tracking.db
	[ -f "$_db" ] || { echo "0 0"; return 0; }
	sqlite3 -readonly -cmd '.timeout 2000' -separator ' ' "$_db" \
	    "SELECT count(*), coalesce(sum(action NOT IN (3, 4)), 0) FROM rcpt" \
	    2>/dev/null || echo "0 -1"
}

# median of the numbers on stdin, one a line.
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_cert DIR: a self-signed RSA 2048 certificate (DIR/cert.pem, the
# key in DIR/key.pem) for both servers of the TLS workload: the most
# common key type on MX hosts.  Its own CA: smtp-load -C DIR/cert.pem
# verifies it.  Names: msgtrkd.bench.test, postfix.bench.test, 127.0.0.1.
bench_cert() {
	mkdir -p "$1" || return 1
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
	    -subj /CN=bench.test -keyout "$1/key.pem" -out "$1/cert.pem" \
	    -addext "subjectAltName=DNS:msgtrkd.bench.test,DNS:postfix.bench.test,IP:127.0.0.1" \
	    -addext "basicConstraints=critical,CA:TRUE" >/dev/null 2>&1 || {
		echo "bench_cert: openssl req failed" >&2
		return 1
	}
	chmod 644 "$1/cert.pem"
	chmod 600 "$1/key.pem"
}

# CPU time.  Clock ticks of /proc/PID/stat (utime, stime, cutime,
# cstime) are 1/CLK_TCK s; a process's utime+stime covers all its
# threads.
CLK_TCK=${CLK_TCK:-$(getconf CLK_TCK)}

# cpu_proc_ms PID: CPU milliseconds (user + system, every thread) that
# process PID has used so far; fails if it is gone.
cpu_proc_ms() {
	# Fields after "(comm)": state=1 ppid=2 ... utime=12 stime=13.
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null |
	    awk -v hz="$CLK_TCK" 'NF >= 13 { printf "%.0f\n", ($12 + $13) * 1000 / hz; ok = 1 }
		END { exit !ok }'
}

# cpu_tree_ms PID: the fallback when no cgroup can be made: CPU ms of
# process PID with its reaped children (cutime, cstime) and of its live
# children with theirs.  Children that exit between two readings but are
# not yet reaped are missed until reaped; Postfix's master reaps at once.
cpu_tree_ms() {
	for _f in /proc/[0-9]*/stat; do
		sed 's/^\([0-9]*\) .*) /\1 /' "$_f" 2>/dev/null
	done | awk -v p="$1" -v hz="$CLK_TCK" '
		# $1 pid, $2 state, $3 ppid, utime $13, stime $14,
		# cutime $15, cstime $16
		$1 == p || $3 == p { t += $13 + $14 + $15 + $16; if ($1 == p) ok = 1 }
		END { if (!ok) exit 1; printf "%.0f\n", t * 1000 / hz }'
}

# cg_new NAME: creates a cgroup v2 group NAME below this shell's own
# cgroup v2 group (so whatever limits apply to us still apply inside it),
# on the cgroup2 mount (/sys/fs/cgroup on a pure v2 system, often
# /sys/fs/cgroup/unified on a hybrid one), and prints its directory; fails
# if that cannot be done.  No controller is enabled: cpu.stat's
# usage_usec needs none.  It counts the CPU of every process ever in the
# group, also those that have exited: what Postfix's short-lived
# smtpd/cleanup/smtp processes need.  The groups made here are named
# msgtrk-bench-*.
cg_new() {
	_m=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	_p=$(sed -n 's/^0:://p' /proc/self/cgroup)
	[ -n "$_m" ] && [ -n "$_p" ] && [ -d "$_m$_p" ] || return 1
	_d=${_m}${_p%/}/$1
	mkdir "$_d" 2>/dev/null && [ -f "$_d/cpu.stat" ] || {
		rmdir "$_d" 2>/dev/null
		return 1
	}
	echo "$_d"
}

# cg_usage_ms DIR: CPU milliseconds used in cgroup DIR so far.
cg_usage_ms() {
	awk '$1 == "usage_usec" { printf "%.0f\n", $2 / 1000; ok = 1 }
		END { exit !ok }' "$1/cpu.stat"
}

# cg_remove DIR: removes cgroup DIR once its processes have gone (waits
# up to BENCH_WAIT s); it never kills them.
cg_remove() {
	[ -d "$1" ] || return 0
	_i=0
	while [ -s "$1/cgroup.procs" ] && [ $_i -lt $((BENCH_WAIT * 20)) ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	rmdir "$1" 2>/dev/null || {
		echo "cg_remove: $1 still has processes: $(tr '\n' ' ' <"$1/cgroup.procs")" >&2
		return 1
	}
}

# cg_run DIR COMMAND...: runs COMMAND inside cgroup DIR (its children,
# and theirs, stay in it).
cg_run() {
	_cg=$1
	shift
	(echo "$BASHPID" >"$_cg/cgroup.procs" && exec "$@")
}
