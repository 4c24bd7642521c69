"""Operating msgtrk: the build's package list, mailbox_dir at startup,
configuration-error exit status, make install (man pages, unit), the
hardened unit's capabilities, the Debian package, and msgtrk sendmail
with cron-style calls and a real mail user agent (NeoMutt).

Run as root (as make test does): msgtrkd drops to the user msgtrk."""

import glob
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (MSGTRK, MSGTRKD, TOP, WAIT, Suite, free_port,  # noqa: E402
                     wait_for, wait_port)

suite = Suite("ops")
EX_USAGE, EX_DATAERR, EX_UNAVAILABLE, EX_TEMPFAIL, EX_CONFIG = \
    64, 65, 69, 75, 78
SHARED = os.path.join(os.path.dirname(TOP), "shared")


def run(args, stdin=b"", env=None, timeout=WAIT * 3, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(args, input=stdin, capture_output=True,
                       timeout=timeout, env=e, cwd=cwd)
    return p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


def need_root():
    assert os.geteuid() == 0, "this case runs as root (as make test does)"


def maildir_files(root, domain, local):
    return sorted(glob.glob(os.path.join(root, domain, local, "new", "*")))


def wait_mail(root, domain, local, n=1):
    return wait_for(lambda: len(maildir_files(root, domain, local)) >= n
                    and maildir_files(root, domain, local),
                    what="%d message(s) for %s@%s" % (n, local, domain))


def local_node(c, **conf):
    """A msgtrkd delivering example.test to Maildir, with MTQP."""
    mtqp = free_port()
    kw = {"local_domains": "example.test",
          "mtqp_listen": "127.0.0.1:%d" % mtqp}
    kw.update(conf)
    d = c.msgtrkd(**kw)
    d.mtqp_port = mtqp
    wait_port(mtqp)
    # The ports listen before the privileged setup ends.
    wait_for(lambda: "daemon started" in d.log(), what="daemon started")
    return d


def mailbox_root(d):
    return d.conf.get("mailbox_dir", d.data("mail"))


def track(envid, keyring, follow=True):
    rc, out, err = run([MSGTRK, "track", "--keyring", keyring, "--json"] +
                       ([] if follow else ["--no-follow"]) + [envid])
    assert rc == 0, (rc, out, err)
    return json.loads(out)


def wait_tracked(envid, keyring, n, action="delivered", follow=True):
    def done():
        t = track(envid, keyring, follow)
        acts = [r["final_action"] for r in t["recipients"]]
        return len(acts) == n and all(a == action for a in acts) and t
    return wait_for(done, what="%d recipient(s) %s" % (n, action),
                    interval=0.2)


def keyring_entries(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


# --- item 1: the build's package list ---------------------------------

def meson_required_modules():
    """pkg-config modules meson.build requires for the programs: every
    dependency('name', ...) not made optional with required :, and not
    meson's built-in threads."""
    mods = []
    for f in [os.path.join(TOP, "meson.build")] + \
            glob.glob(os.path.join(TOP, "*", "meson.build")):
        with open(f) as fh:
            text = fh.read()
        for m in re.finditer(r"dependency\(\s*'([^']+)'([^)]*)\)", text):
            name, rest = m.group(1), m.group(2)
            if name == "threads" or "required" in rest:
                continue
            mods.append(name)
    return sorted(set(mods))


def deb_package_of(path):
    rc, out, err = run(["dpkg", "-S", path])
    assert rc == 0, (path, err)
    return out.split(":", 1)[0].strip()


def check_build_list(build_list):
    """Returns the list of what the build needs and build_list lacks."""
    missing = []
    for mod in meson_required_modules():
        rc, out, err = run(["pkg-config", "--path", mod])
        assert rc == 0, ("pkg-config --path %s" % mod, err)
        pkg = deb_package_of(out.strip())
        if pkg not in build_list:
            missing.append("%s (%s)" % (pkg, mod))
    # The tools meson.build and the Makefile run: the package holding
    # the program, or one a listed package depends on (pkg-config is a
    # transitional package for pkgconf-bin).
    pulled = set(build_list)
    for _ in range(2):
        for pkg in list(pulled):
            rc, out, err = run(["dpkg-query", "-W", "-f",
                                "${Depends}, ${Pre-Depends}", pkg])
            pulled.update(re.findall(r"(?:^|, |\| )([a-z0-9][a-z0-9+.-]+)",
                                     out))
    for tool in ("meson", "ninja", "pkg-config", "cc"):
        pkg = deb_package_of(os.path.realpath(shutil.which(tool)))
        if pkg not in pulled:
            missing.append("%s (%s)" % (pkg, tool))
    return missing


@suite.case
def deps_build_list_covers_meson(c):
    rc, out, err = run([os.path.join(TOP, "build-aux", "deps.sh"), "list",
                        "build"])
    assert rc == 0, err
    build = out.split()
    mods = meson_required_modules()
    for m in ("libcares", "libpq", "sqlite3", "libevent_core", "libssl"):
        assert m in mods, mods
    assert "cmocka" not in mods, mods
    assert check_build_list(build) == [], check_build_list(build)
    # The check fails when a package is missing from the list.
    without = [p for p in build if p != "libc-ares-dev"]
    assert check_build_list(without) == ["libc-ares-dev (libcares)"], \
        check_build_list(without)
    # cmocka is the tests' only: in the test list, not the build list.
    rc, out, err = run([os.path.join(TOP, "build-aux", "deps.sh"), "list",
                        "test"])
    assert "libcmocka-dev" in out.split() and \
        "libcmocka-dev" not in build, out


# --- item 2: mailbox_dir ----------------------------------------------

def send(d, rcpts, keyring, body=b"Subject: hello\n\nhi\n"):
    rc, out, err = run([MSGTRK, "send", "--server",
                        "127.0.0.1:%d" % d.smtp_port, "--mtqp",
                        "127.0.0.1:%d" % d.mtqp_port, "--keyring", keyring,
                        "--from", "me@example.test"] + rcpts, stdin=body)
    assert rc == 0, (rc, out, err)
    return out.splitlines()[0].split(" ", 1)[1]


@suite.case
def mailbox_dir_outside_data_dir_created(c):
    need_root()
    mb = c.path("spool", "mail")  # its parent exists, it does not
    os.makedirs(c.path("spool"))
    d = local_node(c, mailbox_dir=mb)
    st = os.stat(mb)
    import pwd
    pw = pwd.getpwnam("msgtrk")
    assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid), st
    assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
    kr = c.path("keyring")
    envid = send(d, ["you@example.test"], kr)
    f = wait_mail(mb, "example.test", "you")[0]
    assert b"Subject: hello" in open(f, "rb").read()
    wait_tracked(envid, kr, 1)


def check_conf(conf_file):
    return run([MSGTRKD, "-n", "-c", conf_file])


def start_fails(conf_file):
    p = subprocess.run([MSGTRKD, "-f", "-c", conf_file],
                       capture_output=True, timeout=WAIT)
    return p.returncode, p.stderr.decode(errors="replace")


def write_conf(c, name, **kw):
    port = free_port()
    conf = {"hostname": "mx.test", "data_dir": c.path(name + "-data"),
            "smtp_listen": "127.0.0.1:%d" % port, "mtqp_listen": "none",
            "local_domains": "example.test"}
    conf.update(kw)
    return c.write(name + ".conf", "".join(
        "%s = %s\n" % kv for kv in conf.items())), port


@suite.case
def mailbox_dir_unreachable_refused(c):
    need_root()
    locked = c.path("locked")
    os.mkdir(locked, 0o700)  # root's, mode 0700: msgtrk cannot traverse
    mb = os.path.join(locked, "mail")
    conf, port = write_conf(c, "a", mailbox_dir=mb)
    want = "msgtrkd: mailbox_dir %s: not writable by user msgtrk: " % mb
    rc, out, err = check_conf(conf)
    assert rc == EX_CONFIG and want in err and "Permission denied" in err, \
        (rc, out, err)
    rc, err = start_fails(conf)
    assert rc == EX_CONFIG, (rc, err)
    assert ("fatal: mailbox_dir %s: not writable by user msgtrk: " % mb) \
        in err and "Permission denied" in err, err
    # An existing mailbox_dir the user cannot write (root's, 0755).
    os.chmod(locked, 0o755)
    os.mkdir(mb, 0o755)
    rc, out, err = check_conf(conf)
    assert rc == EX_CONFIG and want in err, (rc, out, err)
    rc, err = start_fails(conf)
    assert rc == EX_CONFIG and "not writable by user msgtrk" in err, err
    # Fixed: -n passes and the daemon starts.
    shutil.chown(mb, "msgtrk", "msgtrk")
    rc, out, err = check_conf(conf)
    assert rc == 0 and "configuration OK" in out, (rc, out, err)
    # lmtp delivery: mailbox_dir is not used, so not checked.
    conf2, _ = write_conf(c, "b", mailbox_dir=os.path.join(
        c.path("locked2"), "mail"), local_transport="lmtp:127.0.0.1:24")
    os.mkdir(c.path("locked2"), 0o700)
    rc, out, err = check_conf(conf2)
    assert rc == 0, (rc, out, err)


@suite.case
def config_errors_exit_78(c):
    need_root()
    bad = c.write("bad.conf", "hostname = mx.test\nno_such_key = 1\n")
    rc, out, err = check_conf(bad)
    assert rc == EX_CONFIG and "bad.conf:2:" in err, (rc, err)
    rc, err = start_fails(bad)
    assert rc == EX_CONFIG and "bad.conf:2:" in err, (rc, err)
    nouser, _ = write_conf(c, "u", user="nosuchuser42")
    rc, out, err = check_conf(nouser)
    assert rc == EX_CONFIG and "user nosuchuser42: no such user" in err, err
    rc, err = start_fails(nouser)
    assert rc == EX_CONFIG and "user nosuchuser42: no such user" in err, err
    rc, out, err = run([MSGTRKD, "-x"])
    assert rc == 2, (rc, err)
    # A port already in use is no configuration error: 1 (restarted).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy, _ = write_conf(c, "p", smtp_listen="127.0.0.1:%d" %
                             s.getsockname()[1])
        rc, err = start_fails(busy)
    assert rc == 1, (rc, err)


# --- item 3: make install ---------------------------------------------

def unit_caps(unit_text):
    m = re.search(r"^CapabilityBoundingSet=(.*)$", unit_text, re.M)
    return m.group(1).split()


def conf_keys_in_code():
    with open(os.path.join(TOP, "src", "common", "conf.c")) as f:
        text = f.read()
    block = text[text.index("conf_keys[] = {"):]
    block = block[:block.index("};")]
    keys = re.findall(r'\.name = "([a-z_]+)"', block)
    keys += re.findall(r"(?:PATHKEY|DURATION|BOOLKEY)\(([a-z_]+)", block)
    return sorted(set(keys))


def product_keys():
    p = os.path.join(SHARED, "PRODUCT.md")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        text = f.read()
    text = text[text.index("### Config file"):text.index("### Behaviour")]
    keys = []
    for line in text.splitlines():
        m = re.match(r"\| ((?:`[a-z_]+`(?:, )?)+) \|", line)
        if m:
            keys += re.findall(r"`([a-z_]+)`", m.group(1))
    return keys


def cli_long_options():
    opts = set()
    for f in glob.glob(os.path.join(TOP, "src", "cli", "*.c")):
        with open(f) as fh:
            opts.update(re.findall(r'\{ "([a-z-]+)", (?:no|required)_argument',
                                   fh.read()))
    opts.discard("help")
    return sorted(opts | {"dns", "ca-file", "server", "mtqp", "keyring",
                          "no-track"})


@suite.case
def make_install_destdir(c):
    dest = c.path("dest")
    rc, out, err = run(["make", "-s", "-C", TOP, "install", "DESTDIR=" + dest],
                       timeout=900)
    assert rc == 0, (rc, out[-2000:], err[-2000:])
    p = lambda *a: os.path.join(dest, "usr/local", *a)  # noqa: E731
    for f in ("sbin/msgtrkd", "bin/msgtrk", "share/man/man1/msgtrk.1",
              "share/man/man5/msgtrkd.conf.5", "share/man/man8/msgtrkd.8",
              "etc/msgtrk/msgtrkd.conf.example",
              "lib/systemd/system/msgtrkd.service"):
        assert os.path.exists(p(f)), f
    assert os.access(p("sbin/msgtrkd"), os.X_OK)
    link = p("libexec/msgtrk/sendmail")
    assert os.path.islink(link) and os.readlink(link) == "../../bin/msgtrk"
    assert os.path.realpath(link) == p("bin/msgtrk")
    # mdoc, lint-clean (warnings and errors; the STYLE level only says
    # whether cross-referenced pages are installed on this machine).
    mans = glob.glob(p("share/man/man*/*"))
    rc, out, err = run(["mandoc", "-Tlint", "-Wwarning"] + mans)
    assert rc == 0 and out == "" and err == "", (rc, out, err)
    with open(p("share/man/man5/msgtrkd.conf.5")) as f:
        conf5 = f.read()
    keys = set(conf_keys_in_code()) | set(product_keys())
    assert len(keys) >= 30, keys
    for k in keys:
        assert re.search(r"^\.It (?:.* )?Cm %s\b" % k, conf5, re.M), \
            "msgtrkd.conf.5 lacks " + k
    for f in ("routes", "aliases", "local_recipients", "sender_logins",
              "passwd"):
        assert re.search(r"^\.It Cm (?:auth No = Cm )?%s" % f, conf5[conf5.index(
            ".Sh FILES NAMED BY KEYS"):], re.M), f
    with open(p("share/man/man1/msgtrk.1")) as f:
        man1 = f.read()
    for o in cli_long_options():
        assert "Fl -%s" % o in man1, "msgtrk.1 lacks --" + o
    for o in ("t", "i", "oi", "f", "F", "C", "N", "R", "r"):
        assert "Fl %s" % o in man1 or ("Op Fl it" in man1 and o in "it"), o
    # The unit: what the contract asks, and systemd's own check.
    with open(p("lib/systemd/system/msgtrkd.service")) as f:
        unit = f.read()
    for line in ("Type=exec", "ExecStart=/usr/local/sbin/msgtrkd -f",
                 "ExecReload=/bin/kill -HUP $MAINPID",
                 "RestartPreventExitStatus=78", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ReadWritePaths=/var/lib/msgtrk",
                 "PrivateTmp=yes", "ProtectHome=yes"):
        assert re.search("^" + re.escape(line) + "$", unit, re.M), line
    assert sorted(unit_caps(unit)) == sorted([
        "CAP_NET_BIND_SERVICE", "CAP_SETGID", "CAP_SETUID", "CAP_CHOWN",
        "CAP_DAC_OVERRIDE"]), unit_caps(unit)
    if shutil.which("systemd-analyze"):
        vdir = c.path("verify")
        os.mkdir(vdir)
        with open(os.path.join(vdir, "msgtrkd.service"), "w") as f:
            f.write(unit.replace("/usr/local/sbin/msgtrkd",
                                 p("sbin/msgtrkd")))
        rc, out, err = run(["systemd-analyze", "verify",
                            os.path.join(vdir, "msgtrkd.service")],
                           env={"MANPATH": p("share/man")})
        assert rc == 0 and err.strip() == "", (rc, out, err)
    # The example configuration is valid as installed.
    rc, out, err = run([p("sbin/msgtrkd"), "-n", "-c",
                        p("etc/msgtrk/msgtrkd.conf.example")])
    assert rc == 0, (rc, out, err)


def privileged_port():
    for port in range(700, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port below 1024")


@suite.case
def unit_capabilities_suffice(c):
    """msgtrkd as the unit runs it: root with only the unit's bounding
    set, no_new_privs: binds a port below 1024, gives data_dir and
    mailbox_dir away, drops, delivers.  Without CAP_DAC_OVERRIDE a
    restart (data_dir now msgtrk's, mode 0700) fails: it is needed."""
    need_root()
    with open(os.path.join(TOP, "etc", "msgtrkd.service.in")) as f:
        caps = unit_caps(f.read())
    port = privileged_port()
    mtqp = free_port()
    conf, _ = write_conf(c, "u", smtp_listen="127.0.0.1:%d" % port,
                         mtqp_listen="127.0.0.1:%d" % mtqp,
                         mailbox_dir=c.path("u-mail"))

    def setpriv(caps):
        bset = "-all," + ",".join("+" + x[4:].lower() for x in caps)
        return ["setpriv", "--bounding-set=" + bset, "--inh-caps=-all",
                "--no-new-privs", MSGTRKD, "-f", "-c", conf]
    log = open(c.path("u.log"), "wb")
    p = subprocess.Popen(setpriv(caps), stdout=log, stderr=log)
    c.on_cleanup(lambda: harness._stop(p))
    try:
        wait_port(port)
    except AssertionError:
        raise AssertionError(open(c.path("u.log")).read())
    d = type("D", (), {"smtp_port": port, "mtqp_port": mtqp})
    kr = c.path("keyring")
    envid = send(d, ["you@example.test"], kr)
    wait_mail(c.path("u-mail"), "example.test", "you")
    wait_tracked(envid, kr, 1)
    harness._stop(p)
    assert p.returncode == 0, p.returncode
    less = [x for x in caps if x != "CAP_DAC_OVERRIDE"]
    r = subprocess.run(setpriv(less), capture_output=True, timeout=WAIT)
    assert r.returncode == 1 and b"Permission denied" in r.stderr, r


# --- item 4: the Debian package ---------------------------------------

@suite.case
def debian_package(c):
    need_root()
    # A copy of the tree without .git and the build directories, so the
    # package build leaves build/ alone.
    src = c.path("src")
    skip = lambda d, names: [n for n in names if d == TOP and (  # noqa
        n == ".git" or n == "fuzz-artifacts" or
        (n.startswith("build") and n != "build-aux"))]
    shutil.copytree(TOP, src, symlinks=True, ignore=skip)
    t0 = time.monotonic()
    rc, out, err = run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src,
                       env={"DEB_BUILD_OPTIONS":
                            "nocheck noautodbgsym parallel=%d" %
                            (os.cpu_count() or 1)}, timeout=1200)
    assert rc == 0, (rc, out[-3000:], err[-3000:])
    t_build = time.monotonic() - t0
    debs = glob.glob(c.path("msgtrk_*.deb"))
    assert len(debs) == 1, os.listdir(c.dir)
    deb = debs[0]
    t0 = time.monotonic()
    rc, out, err = run(["lintian", "--tag-display-limit", "0", deb],
                       timeout=600)
    t_lint = time.monotonic() - t0
    errors = [l for l in out.splitlines() if l.startswith("E:")]
    assert errors == [], out
    print("     dpkg-buildpackage %.0fs, lintian %.0fs, lintian: %s" % (
        t_build, t_lint, "; ".join(out.splitlines()) or "no tags"))
    rc, out, err = run(["dpkg-deb", "-c", deb])
    for f in ("./usr/sbin/msgtrkd", "./usr/bin/msgtrk",
              "./etc/msgtrk/msgtrkd.conf",
              "./lib/systemd/system/msgtrkd.service",
              "./usr/share/man/man8/msgtrkd.8.gz",
              "./usr/share/man/man5/msgtrkd.conf.5.gz",
              "./usr/share/man/man1/msgtrk.1.gz"):
        assert re.search(" " + re.escape(f) + "$", out, re.M), (f, out)
    rc, out, err = run(["dpkg-deb", "-I", deb])
    assert "Depends: adduser" in out, out
    rc, out, err = run(["dpkg-deb", "-f", deb, "Package"])
    assert out.strip() == "msgtrk"
    ctl = c.path("ctl")
    subprocess.run(["dpkg-deb", "-e", deb, ctl], check=True)
    assert open(os.path.join(ctl, "conffiles")).read().split() == \
        ["/etc/msgtrk/msgtrkd.conf"]
    postinst = open(os.path.join(ctl, "postinst")).read()
    assert "adduser --system" in postinst and "/var/lib/msgtrk" in postinst
    assert "deb-systemd-helper enable 'msgtrkd.service'" in postinst
    # The extracted programs on the shipped configuration.
    x = c.path("x")
    subprocess.run(["dpkg-deb", "-x", deb, x], check=True)
    os.chmod(x, 0o755)
    shipped = os.path.join(x, "etc/msgtrk/msgtrkd.conf")
    rc, out, err = run([os.path.join(x, "usr/sbin/msgtrkd"), "-n", "-c",
                        shipped])
    assert rc == 0, (rc, out, err)
    # Only ports and paths changed: loopback ports, a data_dir here, a
    # routes file sending everything to a test peer.
    peer = c.peer()
    routes = c.write("routes", "*  [127.0.0.1]:%d\n" % peer.port)
    smtp, mtqp = free_port(), free_port()
    with open(shipped) as f:
        text = f.read()
    text += "smtp_listen = 127.0.0.1:%d\nmtqp_listen = 127.0.0.1:%d\n" \
        "data_dir = %s\nroutes = %s\n" % (smtp, mtqp, c.path("pkgdata"),
                                           routes)
    conf = c.write("pkg.conf", text)
    log = open(c.path("pkg.log"), "wb")
    p = subprocess.Popen([os.path.join(x, "usr/sbin/msgtrkd"), "-f", "-c",
                          conf], stdout=log, stderr=log)
    c.on_cleanup(lambda: harness._stop(p))
    try:
        wait_port(smtp)
        wait_port(mtqp)
    except AssertionError:
        raise AssertionError(open(c.path("pkg.log")).read())
    kr = c.path("keyring")
    rc, out, err = run([os.path.join(x, "usr/bin/msgtrk"), "send",
                        "--server", "127.0.0.1:%d" % smtp, "--mtqp",
                        "127.0.0.1:%d" % mtqp, "--keyring", kr, "--from",
                        "me@example.test", "you@dest.test"],
                       stdin=b"Subject: pkg\n\nhi\n")
    assert rc == 0, (rc, out, err)
    envid = out.splitlines()[0].split(" ", 1)[1]
    m = peer.wait_messages(1)[0]
    assert b"Subject: pkg" in m["data"], m
    # The peer has no MTQP server: the first hop's answer is the news.
    wait_tracked(envid, kr, 1, action="transferred", follow=False)


# --- item 6: sendmail -------------------------------------------------

def sendmail(args, d, body, home, argv0=None, conf=None):
    env = {"HOME": home}
    cmd = [argv0] if argv0 else [MSGTRK, "sendmail"]
    if conf is not False:
        cmd += ["-C", conf or d.conf_file]
    return run(cmd + args, stdin=body, env=env)


def home(c, name="home"):
    h = c.path(name)
    os.makedirs(h, exist_ok=True)
    return h


def read_mail(path):
    """A delivered message with LF line ends (Maildir keeps CRLF)."""
    with open(path, "rb") as f:
        return f.read().replace(b"\r\n", b"\n")


def header_names(data):
    head = data.split(b"\n\n", 1)[0]
    return [l.split(b":", 1)[0].lower() for l in head.split(b"\n")
            if l and l[:1] not in b" \t"]


@suite.case
def sendmail_t_cron_style(c):
    d = local_node(c)
    h = home(c)
    body = (b"From: Backup <backup@example.test>\n"
            b"To: Alice <alice@example.test>, bob@example.test\n"
            b"Cc: \"Carol, C.\" <carol@example.test> (cc)\n"
            b"Bcc: dave@example.test\n"
            b"Subject: nightly\n\nall good\n.\nstill body\n")
    rc, out, err = sendmail(["-t", "-i"], d, body, h)
    assert rc == 0 and out == "" and err == "", (rc, out, err)
    mb = mailbox_root(d)
    for who in ("alice", "bob", "carol", "dave"):
        data = read_mail(wait_mail(mb, "example.test", who)[0])
        names = header_names(data)
        assert b"bcc" not in names, data
        assert b"date" in names and b"message-id" in names, data
        assert b"still body" in data, data
    kr = os.path.join(h, ".local/share/msgtrk/keyring")
    e = keyring_entries(kr)
    assert len(e) == 1 and sorted(e[0]["recipients"]) == [
        "alice@example.test", "bob@example.test", "carol@example.test",
        "dave@example.test"], e
    assert e[0]["mtqp"] == "127.0.0.1:%d" % d.mtqp_port, e
    wait_tracked(e[0]["envid"], kr, 4)
    # echo body | msgtrk sendmail -t, as cron's output: no blank line
    # after the header is added, a bare local part gets the domain.
    rc, out, err = sendmail(["-t"], d, b"To: root\nSubject: cron\n", h)
    assert rc == 0, (rc, out, err)
    data = read_mail(wait_mail(mb, "example.test", "root")[0])
    assert b"From: " in data and b"Subject: cron" in data, data


@suite.case
def sendmail_symlink_i_f(c):
    d = local_node(c)
    h = home(c)
    link = c.path("bin", "sendmail")
    os.makedirs(os.path.dirname(link))
    os.symlink(os.path.abspath(MSGTRK), link)
    body = b"Subject: dots\n\none\n.\ntwo\n"
    rc, out, err = sendmail(["-i", "-f", "x@example.test",
                             "r1@example.test"], d, body, h, argv0=link)
    assert rc == 0 and out == "" and err == "", (rc, out, err)
    mb = mailbox_root(d)
    data = read_mail(wait_mail(mb, "example.test", "r1")[0])
    assert b"Return-Path: <x@example.test>" in data, data
    assert b"From: x@example.test" in data, data
    assert data.endswith(b"one\n.\ntwo\n"), data
    # Without -i the line "." ends the message; -F names the sender.
    rc, out, err = sendmail(["-F", "Cron Daemon", "-oem", "-odi",
                             "-B8BITMIME", "r2@example.test"], d, body, h,
                            argv0=link)
    assert rc == 0, (rc, out, err)
    data = read_mail(wait_mail(mb, "example.test", "r2")[0])
    assert data.endswith(b"one\n"), data
    assert re.search(rb"From: Cron Daemon <[^@]+@example.test>", data), data
    kr = os.path.join(h, ".local/share/msgtrk/keyring")
    for e in keyring_entries(kr):
        wait_tracked(e["envid"], kr, 1)


@suite.case
def sendmail_neomutt(c):
    d = local_node(c)
    h = home(c)
    rc_file = c.write("muttrc", "\n".join([
        'set sendmail="%s sendmail -C %s"' % (os.path.abspath(MSGTRK),
                                                d.conf_file),
        "set use_from=yes", 'set from="Mutt User <mutt@example.test>"',
        "set envelope_from=yes", "set record=", "set copy=no",
        "set charset=utf-8", "set send_charset=us-ascii:utf-8", ""]))
    rc, out, err = run(["neomutt", "-n", "-F", rc_file, "-s", "from mutt",
                        "-c", "cc@example.test", "--", "to@example.test"],
                       stdin=b"sent by neomutt\n",
                       env={"HOME": h, "TERM": "dumb"})
    assert rc == 0, (rc, out, err)
    mb = mailbox_root(d)
    for who in ("to", "cc"):
        data = read_mail(wait_mail(mb, "example.test", who)[0])
        assert b"sent by neomutt" in data and b"Subject: from mutt" in data
        assert b"Return-Path: <mutt@example.test>" in data, data
    kr = os.path.join(h, ".local/share/msgtrk/keyring")
    e = keyring_entries(kr)
    assert len(e) == 1, e
    wait_tracked(e[0]["envid"], kr, 2)


@suite.case
def sendmail_exit_codes(c):
    rcpts = c.write("rcpts", "ok@example.test\n")
    d = local_node(c, local_recipients=rcpts)
    h = home(c)
    msg = b"Subject: x\n\nx\n"
    cases = [
        (["-q"], EX_USAGE),
        (["-bp"], EX_USAGE),
        (["--bogus", "ok@example.test"], EX_USAGE),
        ([], EX_USAGE),  # no recipient
        (["-t"], EX_USAGE),  # none in the header either
        (["bad address@example.test"], EX_DATAERR),
        (["<unbalanced@example.test"], EX_DATAERR),
        (["nobody@example.test"], EX_UNAVAILABLE),  # 550 5.1.1 at RCPT
        (["-oem", "-odi", "-bm", "-U", "-v", "-m", "-Lcron", "-h", "5",
          "ok@example.test"], 0),
    ]
    for args, want in cases:
        rc, out, err = sendmail(args, d, msg, h)
        assert rc == want, (args, rc, want, err)
        if want != 0:
            assert err.startswith("msgtrk sendmail: "), (args, err)
    # Nothing listening: try again later.
    rc, out, err = sendmail(["--server", "127.0.0.1:%d" % free_port(),
                             "ok@example.test"], d, msg, h)
    assert rc == EX_TEMPFAIL and "connect" in err, (rc, err)
    # A configuration that cannot be read.
    rc, out, err = sendmail(["ok@example.test"], d, msg, h,
                            conf=c.path("missing.conf"))
    assert rc == EX_CONFIG, (rc, err)
    # A keyring that cannot be written: sent, untracked, a warning.
    rc, out, err = sendmail(["ok@example.test"], d, msg, "/dev/null/x")
    assert rc == 0 and "sent untracked" in err, (rc, err)
    wait_mail(mailbox_root(d), "example.test", "ok", 2)


@suite.case
def sendmail_server_without_mtrk(c):
    """Tracking never stops a message: a server without MTRK gets it
    untracked, with a warning; no keyring entry is made."""
    p = c.peer(ehlo=("PIPELINING", "8BITMIME"))
    h = home(c)
    rc, out, err = run([MSGTRK, "sendmail", "--server",
                        "127.0.0.1:%d" % p.port, "-f", "me@example.test",
                        "you@dest.test"], stdin=b"Subject: s\n\nb\n",
                       env={"HOME": h})
    assert rc == 0 and "sent untracked" in err and "MTRK" in err, (rc, err)
    m = p.wait_messages(1)[0]
    assert "MTRK=" not in m["mail"] and "ENVID=" not in m["mail"], m
    assert not os.path.exists(os.path.join(h, ".local/share/msgtrk/keyring"))
    # 4xx at RCPT: EX_TEMPFAIL; 5xx at DATA's end: EX_UNAVAILABLE.
    p2 = c.peer(rcpt_reply=lambda a: "451 4.3.0 try later")
    rc, out, err = run([MSGTRK, "sendmail", "--server",
                        "127.0.0.1:%d" % p2.port, "you@dest.test"],
                       stdin=b"Subject: s\n\nb\n", env={"HOME": h})
    assert rc == EX_TEMPFAIL and "451" in err, (rc, err)
    p3 = c.peer(data_reply="554 5.6.0 no thanks")
    rc, out, err = run([MSGTRK, "sendmail", "--server",
                        "127.0.0.1:%d" % p3.port, "you@dest.test"],
                       stdin=b"Subject: s\n\nb\n", env={"HOME": h})
    assert rc == EX_UNAVAILABLE and "554" in err, (rc, err)


if __name__ == "__main__":
    suite.main()
