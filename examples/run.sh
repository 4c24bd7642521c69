#!/bin/sh
# make run: msgtrkd in the foreground on loopback with an example
# configuration (embedded SQLite store), and how to send and track a
# message against it.  Run as a user, everything is under build/run/.
# Run as root, msgtrkd drops to the user msgtrk (or nobody when there is
# no such user), which must reach data_dir and mailbox_dir: they are
# under build/run/ when that user can get there, else under
# /var/tmp/msgtrk-run/ (a clone in /root, mode 0700, is not reachable).
# SMTP_PORT and MTQP_PORT change the ports (2525 and 11038).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
smtp_port=${SMTP_PORT:-2525}
mtqp_port=${MTQP_PORT:-11038}
run=$top/build/run
mkdir -p "$run"
user=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
	user=nobody
	getent passwd msgtrk >/dev/null && user=msgtrk
	if ! setpriv --reuid="$user" --regid="$(id -g "$user")" \
	    --clear-groups test -x "$run" 2>/dev/null; then
		run=/var/tmp/msgtrk-run
		mkdir -p "$run"
		chmod 0755 "$run"
	fi
fi
cat >"$run/msgtrkd.conf" <<CONF
# Written by make run (examples/run.sh).
hostname = localhost.localdomain
data_dir = $run/data
smtp_listen = 127.0.0.1:$smtp_port
mtqp_listen = 127.0.0.1:$mtqp_port
local_domains = example.test
mailbox_dir = $run/mail
relay_networks = 127.0.0.0/8
user = $user
CONF
cat <<MSG
msgtrkd: SMTP on 127.0.0.1:$smtp_port, MTQP on 127.0.0.1:$mtqp_port, data in $run
Mail to @example.test is delivered to $run/mail/example.test/<user>/new/.

In another terminal:
  printf 'Subject: hello\n\nhi\n' | $top/build/msgtrk send \\
      --server 127.0.0.1:$smtp_port --mtqp 127.0.0.1:$mtqp_port \\
      --from me@example.test you@example.test
  $top/build/msgtrk track <envid printed by send>
  $top/build/msgtrk log -c $run/msgtrkd.conf
or, as cron or mutt would:
  printf 'To: you@example.test\nSubject: hi\n\nhi\n' | \\
      $top/build/msgtrk sendmail -t -C $run/msgtrkd.conf

Stop with Ctrl-C.
MSG
exec "$top/build/msgtrkd" -f -c "$run/msgtrkd.conf"
