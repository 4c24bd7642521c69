#!/bin/sh
# make run: msgtrkd in the foreground on loopback with an example
# configuration (embedded SQLite store under build/run/), and how to send
# and track a message against it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
run=$top/build/run
mkdir -p "$run"
user=$(id -un)
[ "$(id -u)" -eq 0 ] && user=nobody	# msgtrkd drops root to this user
cat >"$run/msgtrkd.conf" <<CONF
# Written by make run (examples/run.sh).
hostname = localhost.localdomain
data_dir = $run/data
smtp_listen = 127.0.0.1:2525
mtqp_listen = 127.0.0.1:11038
local_domains = example.test
mailbox_dir = $run/mail
relay_networks = 127.0.0.0/8
user = $user
CONF
cat <<MSG
msgtrkd: SMTP on 127.0.0.1:2525, MTQP on 127.0.0.1:11038, data in $run
Mail to @example.test is delivered to $run/mail/example.test/<user>/new/.

In another terminal:
  printf 'Subject: hello\n\nhi\n' | $top/build/msgtrk send \\
      --server 127.0.0.1:2525 --mtqp 127.0.0.1:11038 \\
      --from me@example.test you@example.test
  $top/build/msgtrk track <envid printed by send>
  $top/build/msgtrk log -c $run/msgtrkd.conf

Stop with Ctrl-C.
MSG
exec "$top/build/msgtrkd" -f -c "$run/msgtrkd.conf"
