"""First-boot contents of a twin node that the emulated OS tools read.

``provision()`` writes (only where missing) the stock repository files, the
boot loader files for the running kernel, /etc/default/grub, SELinux and swap
configuration, and records the preinstalled packages (with their payloads).
The twin calls it once per node at ``up`` after os-release is in place.
"""

import re

from . import boot, fs, kmods, pkgdb, state

CENTOS7_BASE = """[base]
name=CentOS-$releasever - Base
mirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=os&infra=$infra
#baseurl=http://mirror.centos.org/centos/$releasever/os/$basearch/
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7

[updates]
name=CentOS-$releasever - Updates
mirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=updates&infra=$infra
#baseurl=http://mirror.centos.org/centos/$releasever/updates/$basearch/
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7

[extras]
name=CentOS-$releasever - Extras
mirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=extras&infra=$infra
#baseurl=http://mirror.centos.org/centos/$releasever/extras/$basearch/
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7
"""

ROCKY_REPO = """[baseos]
name=Rocky Linux $releasever - BaseOS
mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=BaseOS-$releasever$rltype
#baseurl=http://dl.rockylinux.org/$contentdir/$releasever/BaseOS/$basearch/os/
gpgcheck=1
enabled=1
countme=1
metadata_expire=6h
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-{major}

[appstream]
name=Rocky Linux $releasever - AppStream
mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=AppStream-$releasever$rltype
#baseurl=http://dl.rockylinux.org/$contentdir/$releasever/AppStream/$basearch/os/
gpgcheck=1
enabled=1
countme=1
metadata_expire=6h
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-{major}

[extras]
name=Rocky Linux $releasever - Extras
mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=extras-$releasever$rltype
gpgcheck=1
enabled=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-{major}
"""

SOURCES = {
    "ubuntu1804": "deb http://archive.ubuntu.com/ubuntu bionic main restricted universe multiverse\ndeb http://archive.ubuntu.com/ubuntu bionic-updates main restricted universe multiverse\ndeb http://security.ubuntu.com/ubuntu bionic-security main restricted universe multiverse\n",
    "ubuntu2204": "deb http://archive.ubuntu.com/ubuntu jammy main restricted universe multiverse\ndeb http://archive.ubuntu.com/ubuntu jammy-updates main restricted universe multiverse\ndeb http://security.ubuntu.com/ubuntu jammy-security main restricted universe multiverse\n",
    "debian12": "deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-updates main\ndeb http://security.debian.org/debian-security bookworm-security main\n",
}
UBUNTU_SOURCES_DEB822 = "Types: deb\nURIs: http://archive.ubuntu.com/ubuntu/\nSuites: noble noble-updates noble-backports\nComponents: main restricted universe multiverse\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n\nTypes: deb\nURIs: http://security.ubuntu.com/ubuntu/\nSuites: noble-security\nComponents: main restricted universe multiverse\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n"


def _write_missing(p, text, mode=None):
    if not fs.exists(p):
        fs.write(p, text, mode)


def _base_pkg(name, full, fmt, arch, repo, payload=None, family="RedHat", log=lambda _x: None):
    spec = {"versions": [full], "arch": arch, "payload": payload or {}}
    c = pkgdb.Candidate(name, full, spec, repo, {"packages": {name: spec}}, fmt)
    if name in pkgdb.installed():
        return
    pkgdb.record_install(c, family, log, reason="base")


def provision(os_key=None, kernel=None):
    """Write the node's first-boot OS files and package database (idempotent)."""
    info = state.node()
    os_key = os_key or info.get("os_key", "centos7")
    kernel = kernel or info.get("kernel")
    family, major, _k = fs.node_os()
    if not state.read().get("kernel"):
        with state.locked() as st:
            st["kernel"] = {"running": kernel}
    boot.machine_id()
    for d in ("/etc/modprobe.d", "/etc/modules-load.d", "/etc/sysctl.d", "/etc/systemd/system/multi-user.target.wants", "/etc/default", "/usr/lib/modprobe.d", "/var/log", "/var/cache"):
        fs.makedirs(d)
    if family == "RedHat":
        for d in ("/etc/yum.repos.d", "/etc/pki/rpm-gpg", "/etc/sysconfig", "/var/lib/rpm", "/etc/yum/pluginconf.d" if major == 7 else "/etc/dnf/plugins"):
            fs.makedirs(d)
    else:
        for d in ("/etc/apt/sources.list.d", "/etc/apt/trusted.gpg.d", "/etc/apt/preferences.d", "/etc/apt/apt.conf.d", "/var/lib/apt/lists", "/var/lib/dpkg", "/usr/share/keyrings"):
            fs.makedirs(d)
        if os_key not in ("ubuntu1804",):
            fs.makedirs("/etc/apt/keyrings")
    if family == "RedHat":
        if major == 7:
            _write_missing("/etc/yum.conf", "[main]\ncachedir=/var/cache/yum/$basearch/$releasever\nkeepcache=0\ndebuglevel=2\nlogfile=/var/log/yum.log\nexactarch=1\nobsoletes=1\ngpgcheck=1\nplugins=1\ninstallonly_limit=5\n")
            _write_missing("/etc/yum.repos.d/CentOS-Base.repo", CENTOS7_BASE)
            _write_missing("/etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n(k8stwin CentOS 7 key)\n-----END PGP PUBLIC KEY BLOCK-----\n")
            _write_missing("/etc/sysconfig/kernel", "# UPDATEDEFAULT specifies if new-kernel-pkg should make\n# new kernels the default\nUPDATEDEFAULT=yes\n\n# DEFAULTKERNEL specifies the default kernel package type\nDEFAULTKERNEL=kernel\n")
            _write_missing("/etc/default/grub", 'GRUB_TIMEOUT=5\nGRUB_DISTRIBUTOR="$(sed \'s, release .*$,,g\' /etc/system-release)"\nGRUB_DEFAULT=saved\nGRUB_DISABLE_SUBMENU=true\nGRUB_TERMINAL_OUTPUT="console"\nGRUB_CMDLINE_LINUX="crashkernel=auto rd.lvm.lv=centos/root rd.lvm.lv=centos/swap rhgb quiet"\nGRUB_DISABLE_RECOVERY="true"\n')
        else:
            _write_missing("/etc/dnf/dnf.conf", "[main]\ngpgcheck=1\ninstallonly_limit=3\nclean_requirements_on_remove=True\nbest=True\nskip_if_unavailable=False\n")
            _write_missing("/etc/yum.repos.d/rocky.repo", ROCKY_REPO.replace("{major}", str(major)))
            _write_missing(f"/etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-{major}", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n(k8stwin Rocky key)\n-----END PGP PUBLIC KEY BLOCK-----\n")
            _write_missing("/etc/sysconfig/kernel", "UPDATEDEFAULT=yes\nDEFAULTKERNEL=kernel-core\n")
            _write_missing("/etc/default/grub", 'GRUB_TIMEOUT=5\nGRUB_DISTRIBUTOR="$(sed \'s, release .*$,,g\' /etc/system-release)"\nGRUB_DEFAULT=saved\nGRUB_DISABLE_SUBMENU=true\nGRUB_TERMINAL_OUTPUT="console"\nGRUB_CMDLINE_LINUX="crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/rl-swap rd.lvm.lv=rl/root rd.lvm.lv=rl/swap rhgb quiet"\nGRUB_DISABLE_RECOVERY="true"\nGRUB_ENABLE_BLSCFG=true\n')
        _write_missing("/etc/selinux/config", "SELINUX=enforcing\nSELINUXTYPE=targeted\n")
        _write_missing("/etc/fstab", "/dev/mapper/root   /      xfs   defaults  0 0\n/dev/mapper/swap   swap   swap  defaults  0 0\n")
        m = re.match(r"^(.+?)-(.+)\.(x86_64)$", kernel or "")
        ver, rel = (m.group(1), m.group(2)) if m else (kernel, "1")
        kname = "kernel" if major == 7 else "kernel-core"
        _base_pkg(kname, f"{ver}-{rel}", "rpm", "x86_64", "anaconda", {"kernel": kernel})
        if major >= 8:
            _base_pkg("kernel", f"{ver}-{rel}", "rpm", "x86_64", "anaconda")
        sysd = "219-67.el7_7.4" if major == 7 else ("239-82.el8" if major == 8 else "252-51.el9")
        for name, full in (("systemd", sysd), ("rpm", "4.11.3-40.el7" if major == 7 else "4.16.1.3-34.el9"), ("yum" if major == 7 else "dnf", "3.4.3-163.el7.centos" if major == 7 else "4.14.0-25.el9"), ("openssh-server", "7.4p1-21.el7"), ("selinux-policy-targeted", "3.13.1-252.el7")):
            _base_pkg(name, full, "rpm", "x86_64", "anaconda")
        fw = "0.6.3-8.el7" if major == 7 else "1.3.4-9.el9_5"
        _base_pkg("firewalld", fw, "rpm", "noarch", "anaconda", {"tools": ["firewall-cmd"], "services": {"firewalld.service": {}}})
        boot.build_initramfs(kernel, f"/boot/initramfs-{kernel}.img")
        if major >= 8:
            if not fs.glob("/boot/loader/entries/*.conf"):
                boot.add_bls_entry(kernel, ("root=/dev/mapper/rl-root ro " + boot._cmdline()).strip())
            if not fs.exists("/boot/grub2/grub.cfg"):
                boot.grub_mkconfig("/boot/grub2/grub.cfg")
            if not fs.exists("/boot/grub2/grubenv"):
                boot.write_grubenv({"saved_entry": f"{boot.machine_id()}-{kernel}", "boot_success": "0"}, "/boot/grub2/grubenv")
        else:
            if not fs.exists("/boot/grub2/grub.cfg"):
                boot.grub_mkconfig("/boot/grub2/grub.cfg")
            if not fs.exists("/boot/grub2/grubenv"):
                boot.write_grubenv({"saved_entry": boot._title_rh(kernel)}, "/boot/grub2/grubenv")
        if not fs.exists("/etc/grub2.cfg"):
            fs.symlink("../boot/grub2/grub.cfg", "/etc/grub2.cfg")
        with state.locked() as st:
            st.setdefault("selinux", {"mode": "enforcing"})
            st.setdefault("swap", {"active": True})
            svcs = st.setdefault("services", {})
            for unit in ("firewalld.service", "sshd.service", "crond.service", "tuned.service"):
                svcs[unit] = {"enabled": True, "active": True}
            st.setdefault("firewall", {"running": True, "enabled": True, "ports": [], "runtime_ports": [], "services": ["dhcpv6-client", "ssh"]})
    else:
        if os_key == "ubuntu2404":
            _write_missing("/etc/apt/sources.list.d/ubuntu.sources", UBUNTU_SOURCES_DEB822)
            _write_missing("/usr/share/keyrings/ubuntu-archive-keyring.gpg", "(k8stwin ubuntu keyring)\n")
            _write_missing("/etc/apt/sources.list", "# Ubuntu sources have moved to /etc/apt/sources.list.d/ubuntu.sources\n")
        else:
            _write_missing("/etc/apt/sources.list", SOURCES.get(os_key, SOURCES["ubuntu2204"]))
        ubuntu = os_key.startswith("ubuntu")
        _write_missing("/etc/default/grub", 'GRUB_DEFAULT=0\nGRUB_TIMEOUT_STYLE=hidden\nGRUB_TIMEOUT=0\nGRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`\nGRUB_CMDLINE_LINUX_DEFAULT="quiet splash"\nGRUB_CMDLINE_LINUX=""\n')
        _write_missing("/etc/fstab", "UUID=0a1b2c3d / ext4 errors=remount-ro 0 1\n" + ("/swap.img\tnone\tswap\tsw\t0\t0\n" if ubuntu else "UUID=4e5f6a7b none swap sw 0 0\n"))
        deb_ver = re.sub(r"-(generic|amd64)$", "", kernel or "")
        _base_pkg(f"linux-image-{kernel}", f"{deb_ver}.1", "deb", "amd64", "base", {"kernel": kernel}, family="Debian")
        sysd = {"ubuntu1804": "237-3ubuntu10.57", "ubuntu2204": "249.11-0ubuntu3.16", "ubuntu2404": "255.4-1ubuntu8.11", "debian12": "252.39-1~deb12u1"}.get(os_key, "249")
        for name, full in (("systemd", sysd), ("apt", "2.4.14" if os_key != "ubuntu1804" else "1.6.17"), ("dpkg", "1.21.1ubuntu2.3"), ("openssh-server", "1:8.9p1-3ubuntu0.13"), ("grub-pc", "2.06-2ubuntu7.2"), ("initramfs-tools", "0.140ubuntu13.5")):
            _base_pkg(name, full, "deb", "amd64", "base", family="Debian")
        if ubuntu:
            _base_pkg("ufw", "0.36.1-4ubuntu0.1", "deb", "all", "base", {"tools": ["ufw"], "services": {"ufw.service": {}}}, family="Debian")
        boot.build_initramfs(kernel, f"/boot/initrd.img-{kernel}", tool="update-initramfs")
        if not fs.exists("/boot/grub/grub.cfg"):
            boot.grub_mkconfig("/boot/grub/grub.cfg", debian=True)
        with state.locked() as st:
            st.setdefault("swap", {"active": True})
            svcs = st.setdefault("services", {})
            for unit in ("ssh.service", "cron.service"):
                svcs.setdefault(unit, {"enabled": True, "active": True})
            if ubuntu:
                svcs["ufw.service"] = {"enabled": True, "active": True}
            st.setdefault("firewall", {"backend": "ufw", "running": False, "ufw_enabled": False, "rules": []})
    fs.makedirs("/run/systemd/system")
    kmods.sync_proc_sys()
    kmods.sync_proc_swaps()
