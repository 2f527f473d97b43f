#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What `meson install` lays out: exactly the expected files, where systemd and the system bus look for them.

test_destdir_layout installs this build (BUILD_ROOT, meson's default prefix unless configured otherwise) into a
staging root with `meson install --destdir` and compares the complete list of files with the expected one;
the other tests configure (without building) a system install (--prefix=/usr) and one with every directory
option overridden, and read the install plan with `meson introspect --installed`.
Environment: BUILD_ROOT (meson sets it), SOURCE_ROOT.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SOURCE_ROOT, log, main, skip  # noqa: E402


def build_root():
    b = os.environ.get("BUILD_ROOT")
    if not b or not os.path.exists(os.path.join(b, "build.ninja")):
        skip("$BUILD_ROOT does not name a meson build directory (meson sets it)")
    return b


def meson(*args, **kw):
    p = subprocess.run(["meson"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.returncode != 0:
        raise AssertionError("meson %s failed:\n%s" % (" ".join(args), p.stdout[-4000:]))
    return p.stdout


def pkg_var(pkg, var):
    p = subprocess.run(["pkg-config", "--variable=" + var, pkg], stdout=subprocess.PIPE, text=True)
    return p.stdout.strip() if p.returncode == 0 else ""


def options(build):
    return {o["name"]: o["value"] for o in json.loads(meson("introspect", "--buildoptions", build))}


def dbus_datadir():
    return pkg_var("dbus-1", "datadir") or "/usr/share"


def expected_files(o):
    """The files (and the one empty directory) a build with options o installs, as absolute paths."""
    prefix = o["prefix"]
    sysconfdir = os.path.join(prefix, o["sysconfdir"])
    bash_completion = pkg_var("bash-completion", "completionsdir") or \
        os.path.join(prefix, o["datadir"], "bash-completion", "completions")
    # systemd searches /usr/local/lib/systemd/... and /usr/lib/systemd/...: its directories follow the prefix.
    # The system bus reads only dbus's own datadir, whatever the prefix.
    files = {
        os.path.join(prefix, o["bindir"], "batchctl"),
        os.path.join(prefix, o["libexecdir"], "batchd"),
        os.path.join(prefix, o["libexecdir"], "batchd-exec"),
        os.path.join(sysconfdir, "batchd", "batchd.conf"),
        os.path.join(sysconfdir, "batchd", "jobs.d") + "/",
        (o["systemdsystemunitdir"] or os.path.join(prefix, "lib/systemd/system")) + "/batchd.service",
        (o["catalogdir"] or os.path.join(prefix, "lib/systemd/catalog")) + "/batchd.catalog",
        (o["sysusersdir"] or os.path.join(prefix, "lib/sysusers.d")) + "/batchd.conf",
        (o["tmpfilesdir"] or os.path.join(prefix, "lib/tmpfiles.d")) + "/batchd.conf",
        (o["dbuspolicydir"] or dbus_datadir() + "/dbus-1/system.d") + "/org.batchd.Batch1.conf",
        (o["dbussystemservicesdir"] or dbus_datadir() + "/dbus-1/system-services") + "/org.batchd.Batch1.service",
        (o["dbusinterfacesdir"] or dbus_datadir() + "/dbus-1/interfaces") + "/org.batchd.Batch1.xml",
        os.path.join(bash_completion, "batchctl"),
        os.path.join(o["zshcompletiondir"] or os.path.join(prefix, o["datadir"], "zsh", "site-functions"),
                     "_batchctl"),
    }
    if shutil.which("scdoc"):
        files |= {os.path.join(prefix, o["mandir"], "man1", "batchctl.1"),
                  os.path.join(prefix, o["mandir"], "man8", "batchd.8")}
    return files


def staged_files(destdir):
    out = set()
    for top, dirs, files in os.walk(destdir):
        rel = "/" + os.path.relpath(top, destdir) if top != destdir else "/"
        for f in files:
            out.add(os.path.join(rel, f))
        if not dirs and not files:
            out.add(rel + "/")
    return out


def unit_value(text, key):
    for line in text.splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1]
    return None


def test_destdir_layout():
    """meson install --destdir: exactly the expected files; the unit names the installed binaries; an edited
    batchd.conf survives a second install."""
    build = build_root()
    o = options(build)
    with tempfile.TemporaryDirectory(prefix="batchd-install.") as dest:
        meson("install", "-C", build, "--no-rebuild", "--destdir", dest)
        got = staged_files(dest)
        want = expected_files(o)
        log("\n".join(sorted(got)))
        assert got == want, "missing: %s\nunexpected: %s" % (sorted(want - got), sorted(got - want))

        unit_path = [f for f in got if f.endswith("/batchd.service")][0]
        with open(dest + unit_path) as f:
            unit = f.read()
        for key in ("ExecStart", "ExecReload"):
            binary = unit_value(unit, key).split()[0]
            assert os.access(dest + binary, os.X_OK), "%s=%s is not what was installed" % (key, binary)
        assert unit_value(unit, "BusName") == "org.batchd.Batch1"
        assert unit_value(unit, "Alias") == "dbus-org.batchd.Batch1.service"

        sysconfdir = os.path.join(o["prefix"], o["sysconfdir"])
        conf = dest + os.path.join(sysconfdir, "batchd", "batchd.conf")
        with open(os.path.join(build, "conf", "batchd.conf")) as f, open(conf) as g:
            assert f.read() == g.read()
        assert oct(os.stat(conf).st_mode & 0o777) == "0o644"
        with open(conf, "a") as f:
            f.write("# edited\n")
        meson("install", "-C", build, "--no-rebuild", "--destdir", dest)
        with open(conf) as f:
            assert f.read().endswith("# edited\n"), "meson install overwrote an edited batchd.conf"


def test_system_prefix_plan():
    """The documented system install (--prefix=/usr --sysconfdir=/etc --localstatedir=/var) puts everything where
    Debian's systemd and dbus look, and bakes /etc and /var into batchd and its units."""
    build_root()
    with tempfile.TemporaryDirectory(prefix="batchd-setup.") as tmp:
        b = os.path.join(tmp, "build")
        meson("setup", b, SOURCE_ROOT, "--prefix=/usr", "--sysconfdir=/etc", "--localstatedir=/var",
              "-Dtests=false")
        plan = set(json.loads(meson("introspect", "--installed", b)).values())
        for path in ("/usr/bin/batchctl", "/usr/libexec/batchd", "/usr/libexec/batchd-exec",
                     "/usr/lib/systemd/system/batchd.service",
                     "/usr/lib/systemd/catalog/batchd.catalog", "/usr/lib/sysusers.d/batchd.conf",
                     "/usr/lib/tmpfiles.d/batchd.conf", "/usr/share/dbus-1/system.d/org.batchd.Batch1.conf",
                     "/usr/share/dbus-1/system-services/org.batchd.Batch1.service",
                     "/usr/share/dbus-1/interfaces/org.batchd.Batch1.xml"):
            assert path in plan, "%s not in %s" % (path, sorted(plan))
        with open(os.path.join(b, "config.h")) as f:
            config = f.read()
        assert '#define SYSCONFDIR "/etc"' in config and '#define LOCALSTATEDIR "/var"' in config, config
        with open(os.path.join(b, "units", "batchd.service")) as f:
            unit = f.read()
        assert unit_value(unit, "ExecStart") == "/usr/libexec/batchd"
        assert unit_value(unit, "ExecReload") == "/usr/bin/batchctl reload"
        with open(os.path.join(b, "units", "batchd.tmpfiles")) as f:
            tmpfiles = f.read()
        assert "d /etc/batchd/jobs.d 0755 root root -" in tmpfiles
        assert "d /var/lib/batchd 0700 root root -" in tmpfiles


def test_directory_options():
    """Every directory meson takes from systemd.pc or dbus-1.pc can be overridden."""
    build_root()
    dirs = {"systemdsystemunitdir": "/opt/t/units", "catalogdir": "/opt/t/catalog", "sysusersdir": "/opt/t/sysusers",
            "tmpfilesdir": "/opt/t/tmpfiles", "dbussystemservicesdir": "/opt/t/services",
            "dbuspolicydir": "/opt/t/policy", "dbusinterfacesdir": "/opt/t/interfaces"}
    with tempfile.TemporaryDirectory(prefix="batchd-setup.") as tmp:
        b = os.path.join(tmp, "build")
        meson("setup", b, SOURCE_ROOT, "--prefix=/usr", "-Dtests=false",
              *["-D%s=%s" % kv for kv in dirs.items()])
        plan = set(json.loads(meson("introspect", "--installed", b)).values())
        for name in ("units/batchd.service", "catalog/batchd.catalog", "sysusers/batchd.conf",
                     "tmpfiles/batchd.conf", "services/org.batchd.Batch1.service", "policy/org.batchd.Batch1.conf",
                     "interfaces/org.batchd.Batch1.xml"):
            assert "/opt/t/" + name in plan, "/opt/t/%s not in %s" % (name, sorted(plan))


if __name__ == "__main__":
    main(globals())
