#!/bin/sh
# bench/postfix/instance.sh: a private Postfix instance, never the system
# one.  Everything lives under DIR (etc/, queue/, data/, maillog); smtpd
# listens on 127.0.0.1:SMTP_PORT and relays everything to
# [127.0.0.1]:RELAY_PORT.
#
#   instance.sh start DIR SMTP_PORT RELAY_PORT [CERT KEY]
#                                                create DIR's config, start;
#                                                with CERT and KEY, smtpd
#                                                offers STARTTLS
#                                                (smtpd_tls_security_level
#                                                = may)
#   instance.sh stop DIR                         postfix -c DIR/etc stop
#   instance.sh sent DIR                         messages delivered so far
#
# Exit status 0 on success; errors on stderr.  DIR and its parents must
# be searchable by the postfix user.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
	echo "usage: $0 start|stop|sent DIR [SMTP_PORT RELAY_PORT]" >&2
	exit 2
}
case $cmd in
start)
	[ $# -eq 4 ] || [ $# -eq 6 ] || {
		echo "usage: $0 start DIR SMTP_PORT RELAY_PORT [CERT KEY]" >&2
		exit 2
	}
	mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
	dir=$(cd "$dir" && pwd)
	for f in main.cf master.cf; do
		sed -e "s|@DIR@|$dir|g" -e "s|@SMTP_PORT@|$3|g" \
		    -e "s|@RELAY_PORT@|$4|g" "$here/$f.in" >"$dir/etc/$f"
	done
	if [ $# -eq 6 ]; then
		# Inbound TLS only, as msgtrkd's tls_cert_file: the relay to
		# the sink stays plaintext (smtp_tls_security_level = none,
		# the default; smtp-sink has no STARTTLS).
		{
			echo "smtpd_tls_security_level = may"
			echo "smtpd_tls_cert_file = $5"
			echo "smtpd_tls_key_file = $6"
		} >>"$dir/etc/main.cf"
	fi
	# The postfix user must reach data/ (mktemp -d makes 0700 dirs: the
	# parents of DIR must be searchable too).
	chmod 755 "$dir"
	chown postfix "$dir/data"
	: >"$dir/maillog"
	# postfix prints errors only to a tty or syslog: keep them visible.
	postfix -c "$dir/etc" check || { echo "$0: postfix check failed (see syslog; run under script(1) to see it)" >&2; exit 1; }
	postfix -c "$dir/etc" start || {
		tail -n 5 "$dir/maillog" >&2
		exit 1
	}
	;;
stop)
	[ -f "$dir/etc/main.cf" ] || { echo "$0: no instance in $dir" >&2; exit 1; }
	postfix -c "$dir/etc" stop
	;;
sent)
	grep -c ' status=sent ' "$dir/maillog" || true
	;;
*)
	echo "$0: unknown command $cmd" >&2
	exit 2
	;;
esac
