"""Conformance: the twin's systemctl (twin/k8stwin/tools/systemctl.py, a
Debian 12 node: systemd 252) against a real systemd 252 booted for the test.

The real side is conformance.BootedSystemd: systemd-nspawn boots the host's
systemd (Debian 12's 252) as PID 1 of an almost empty root whose /usr is an
overlay of the host's, in about two seconds, with no network and nothing
enabled; systemctl runs inside through nsenter. (The real-node tier's booted
Debian would serve too, but it costs minutes to build and boot; this one
shares nothing with it.) Three unit files on both sides: a packaged one in
/lib/systemd/system, a static helper without [Install], an admin's own in
/etc/systemd/system.

The command lines are Salt's systemd_service ones (`status UNIT -n 0` for
available, is-active, is-enabled, start/stop/restart, enable/disable,
mask/unmask, list-unit-files, show -P Id, daemon-reload, --version) and the
product's `systemctl is-active docker`. Compared per step: exit code, stdout
and stderr (status: the Loaded line and the Active state; list-unit-files:
the probe units' rows)."""

import re
import shutil

import pytest

from tests.twin_judges import conformance as cf

REAL_VERSION = "systemd 252 (252.39-1~deb12u2)"
UNITS = {
    "/lib/systemd/system/probe.service": "[Unit]\nDescription=Conformance probe\n[Service]\nExecStart=/bin/sleep infinity\n"
                                         "[Install]\nWantedBy=multi-user.target\n",
    "/lib/systemd/system/helper.service": "[Unit]\nDescription=Static helper\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
    "/etc/systemd/system/local.service": "[Unit]\nDescription=Local unit\n[Service]\nExecStart=/bin/sleep infinity\n"
                                         "[Install]\nWantedBy=multi-user.target\n",
}
WANTS = "/etc/systemd/system/multi-user.target.wants"
NO_INSTALL = (
    "The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\nAlias= settings in the [Install] "
    "section, and DefaultInstance= for template\nunits). This means they are not meant to be enabled using systemctl.\n"
    " \nPossible reasons for having this kind of units are:\n\u2022 A unit may be statically enabled by being symlinked "
    "from another unit's\n  .wants/ or .requires/ directory.\n\u2022 A unit's purpose may be to act as a helper for some "
    "other unit which has\n  a requirement dependency on it.\n\u2022 A unit may be started when needed via activation "
    "(socket, path, timer,\n  D-Bus, udev, scripted systemctl call, ...).\n\u2022 In case of template units, the unit is "
    "meant to be enabled with some\n  instance name specified.\n")
LOADED = "     Loaded: loaded (/lib/systemd/system/probe.service; {}; preset: enabled)"
LIST = ["--full", "--no-legend", "--no-pager", "list-unit-files"]
# systemctl arguments, recorded real (rc, stdout, stderr)[, T]; status and
# list-unit-files are viewed (see view()). T: observed on the real systemd when
# written, checked on the twin only (an enable/disable/mask costs the real one
# a reload, ~0.4 s; these repeat one that changes nothing)
T = "twin"
CASES = [
    (["--version"], (0, "systemd 252", "")),
    (["status", "probe.service", "-n", "0"], (3, ["\u25cb probe.service - Conformance probe", LOADED.format("disabled"),
                                                  "     Active: inactive (dead)"], "")),
    (["status", "nosuch.service", "-n", "0"], (4, [], "Unit nosuch.service could not be found.\n")),
    (["is-active", "probe.service"], (3, "inactive\n", "")),
    (["is-active", "nosuch.service"], (3, "inactive\n", "")),
    (["is-enabled", "probe.service"], (1, "disabled\n", "")),
    (["is-enabled", "helper.service"], (0, "static\n", "")),
    (["is-enabled", "nosuch.service"], (1, "", "Failed to get unit file state for nosuch.service: No such file or directory\n")),
    (["enable", "helper.service"], (0, "", NO_INSTALL)),
    (["enable", "probe.service"], (0, "", f"Created symlink {WANTS}/probe.service \u2192 /lib/systemd/system/probe.service.\n")),
    (["enable", "probe.service"], (0, "", ""), T),
    (["is-enabled", "probe.service"], (0, "enabled\n", "")),
    (["enable", "nosuch.service"], (1, "", "Failed to enable unit: Unit file nosuch.service does not exist.\n")),
    (["start", "probe.service"], (0, "", "")),
    (["status", "probe.service", "-n", "0"], (0, ["\u25cf probe.service - Conformance probe", LOADED.format("enabled"),
                                                  "     Active: active (running)"], "")),
    (["is-active", "probe"], (0, "active\n", "")),
    (["start", "nosuch.service"], (5, "", "Failed to start nosuch.service: Unit nosuch.service not found.\n")),
    (["stop", "nosuch.service"], (5, "", "Failed to stop nosuch.service: Unit nosuch.service not loaded.\n")),
    (["mask", "probe.service"], (0, "", "Created symlink /etc/systemd/system/probe.service \u2192 /dev/null.\n")),
    (["mask", "probe.service"], (0, "", ""), T),
    (["is-enabled", "probe.service"], (1, "masked\n", "")),
    (["start", "probe.service"], (1, "", "Failed to start probe.service: Unit probe.service is masked.\n")),
    (["stop", "probe.service"], (0, "", "")),
    (["status", "probe.service", "-n", "0"], (3, ["\u25cb probe.service", "     Loaded: masked (Reason: Unit probe.service is masked.)",
                                                  "     Active: inactive (dead)"], "")),
    (["unmask", "probe.service"], (0, "", 'Removed "/etc/systemd/system/probe.service".\n')),
    (["unmask", "probe.service"], (0, "", ""), T),
    (["is-enabled", "probe.service"], (0, "enabled\n", "")),
    (["mask", "local.service"], (1, "", "Failed to mask unit: File /etc/systemd/system/local.service already exists.\n")),
    (LIST, (0, [["helper.service", "static", "-"], ["local.service", "disabled", "enabled"],
                ["probe.service", "enabled", "enabled"]], "")),
    (["show", "probe", "-P", "Id"], (0, "probe.service\n", "")),
    (["disable", "probe.service"], (0, "", f'Removed "{WANTS}/probe.service".\n')),
    (["disable", "probe.service"], (0, "", ""), T),
    (["disable", "nosuch.service"], (1, "", "Failed to disable unit: Unit file nosuch.service does not exist.\n")),
    (["--system", "daemon-reload"], (0, "", "")),
    (["restart", "probe.service"], (0, "", "")),
    (["is-active", "probe.service"], (0, "active\n", "")),
    (["stop", "probe.service"], (0, "", "")),
    (["is-active", "probe.service"], (3, "inactive\n", "")),
    (["enable", "--now", "local.service"], (0, "", f"Created symlink {WANTS}/local.service \u2192 /etc/systemd/system/local.service.\n")),
    (["is-active", "local.service"], (0, "active\n", "")),
    (["disable", "--now", "local.service"], (0, "", f'Removed "{WANTS}/local.service".\n')),
    (["is-active", "local.service"], (3, "inactive\n", "")),
    (["is-active", "docker"], (3, "inactive\n", "")),  # the product's onlyif: unknown unit
]
PROBES = ("probe.service", "helper.service", "local.service")


def view(argv, res):
    if argv[0] == "--version":
        return (res.rc, re.match(r"\w+ \d+", res.out).group(0), res.err)
    if argv[0] == "status":
        lines = res.out.splitlines()[:3]
        return (res.rc, [re.sub(r" since .*", "", x) for x in lines], res.err)
    if argv == LIST:
        return (res.rc, [x.split() for x in res.out.splitlines() if x.split(" ", 1)[0] in PROBES], res.err)
    return tuple(res)


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    if not shutil.which("systemd-nspawn") or not shutil.which("nsenter"):
        reason = cf.ensure_packages({"systemd-nspawn": "systemd-container", "nsenter": "util-linux"})
        if reason:
            yield None
            return
    sd = cf.BootedSystemd(tmp_path_factory.mktemp("systemd"))
    for path, text in UNITS.items():
        where = sd.usr_upper / path[len("/usr/"):] if path.startswith("/usr/") else (
            sd.usr_upper / path[1:] if path.startswith("/lib/") else sd.root / path.lstrip("/"))
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text(text)
    try:
        yield sd.start()
    finally:
        sd.close()


def test_systemctl_conforms(tmp_path, booted):
    twin = cf.TwinNode(tmp_path / "twin")
    for path, text in UNITS.items():
        twin.write(path, text)
    for argv, recorded, *only in CASES:
        got = view(argv, twin.run(["systemctl", *argv]))
        if booted is not None and not only:
            ref = view(argv, booted.systemctl(*argv))
            assert ref == recorded, cf.diff_hint(f"{argv}: real {REAL_VERSION}? not as recorded", recorded, ref, who="real now")
        assert got == recorded, cf.diff_hint(argv, recorded, got)
