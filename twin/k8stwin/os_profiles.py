"""
The operating systems a twin node can run: their identity files (what Salt's
core grains read to tell the OS), the tools they have, and a default kernel.

Identity file contents follow what each distribution ships in its
``*-release`` package (centos-release 7-7.1908, rocky-release 8.10 / 9.6,
almalinux-release 9.6, base-files of Ubuntu 18.04.3 / 22.04 / 24.04 and
Debian 12), as documented by os-release(5) and the distributions' own files.

Each EL profile's default kernel is one its release's repositories still
carry kernel-devel for (twin/catalog): Rocky and Alma keep only the current
minor release in their main repositories (older minors move to the vault), so
a 9.6 node runs a 9.6 kernel. A node given an older minor's kernel (cluster
file `kernel:`) finds no headers for it, as a real one would. CentOS 7 keeps
the seed's 7.7 kernel, whose kernel-devel the 7.9 vault lacks (the seed's trap).
"""

# Tools every node has (systemd machines with the NVIDIA/Kubernetes stack the
# states may install; a tool whose package is not installed is for the tool's
# own module to refuse).
COMMON_TOOLS = [
    "systemctl", "systemd-run", "modprobe", "lsmod", "rmmod", "depmod", "sysctl",
    "shutdown", "reboot", "poweroff", "halt",
    "swapoff", "swapon",
    "dkms", "nvidia-smi", "nvidia-installer", "nvidia-ctk",
    "kubeadm", "kubectl", "kubelet", "containerd", "docker", "crictl",
]

REDHAT_TOOLS = [
    "rpm", "dracut", "grub2-mkconfig", "grub2-set-default", "grub2-editenv", "grubby",
    "firewall-cmd", "setenforce", "getenforce",
]
EL7_TOOLS = ["yum", "yum-config-manager"]
EL8_TOOLS = ["dnf", "yum"]  # on el8+ /usr/bin/yum is a link to dnf-3

DEBIAN_TOOLS = [
    "apt-get", "apt-cache", "apt", "apt-mark", "dpkg", "dpkg-query",
    "update-initramfs", "update-grub", "grub-mkconfig", "ufw",
]

# Commands that would act on the host if a node reached the host's copy: a
# node sees them as missing ("command not found") unless emulated above.
BLOCKED_TOOLS = [
    "init", "telinit", "kexec", "systemd-sysv-install", "ctrlaltdel", "hwclock",
    "iptables", "ip6tables", "iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore",
    "iptables-legacy", "iptables-nft", "nft", "ebtables", "ipvsadm",
]

_CENTOS7_OS_RELEASE = """\
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:7"
HOME_URL="https://www.centos.org/"
BUG_REPORT_URL="https://bugs.centos.org/"

CENTOS_MANTISBT_PROJECT="CentOS-7"
CENTOS_MANTISBT_PROJECT_VERSION="7"
REDHAT_SUPPORT_PRODUCT="centos"
REDHAT_SUPPORT_PRODUCT_VERSION="7"

"""


def _rocky_os_release(version, codename, major, end):
    return f"""\
NAME="Rocky Linux"
VERSION="{version} ({codename})"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="{version}"
PLATFORM_ID="platform:el{major}"
PRETTY_NAME="Rocky Linux {version} ({codename})"
ANSI_COLOR="0;32"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:rocky:rocky:{major}::baseos"
HOME_URL="https://rockylinux.org/"
BUG_REPORT_URL="https://bugs.rockylinux.org/"
SUPPORT_END="{end}"
ROCKY_SUPPORT_PRODUCT="Rocky-Linux-{major}"
ROCKY_SUPPORT_PRODUCT_VERSION="{version}"
REDHAT_SUPPORT_PRODUCT="Rocky Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="{version}"
"""


_ALMA9_OS_RELEASE = """\
NAME="AlmaLinux"
VERSION="9.6 (Sage Margay)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.6"
PLATFORM_ID="platform:el9"
PRETTY_NAME="AlmaLinux 9.6 (Sage Margay)"
ANSI_COLOR="0;34"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:almalinux:almalinux:9::baseos"
HOME_URL="https://almalinux.org/"
DOCUMENTATION_URL="https://wiki.almalinux.org/"
BUG_REPORT_URL="https://bugs.almalinux.org/"

ALMALINUX_MANTISBT_PROJECT="AlmaLinux-9"
ALMALINUX_MANTISBT_PROJECT_VERSION="9.6"
REDHAT_SUPPORT_PRODUCT="AlmaLinux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.6"
SUPPORT_END=2032-06-01
"""


def _ubuntu_os_release(version, version_id, codename, name):
    return f"""\
NAME="Ubuntu"
VERSION="{version} LTS ({name})"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME="Ubuntu {version} LTS"
VERSION_ID="{version_id}"
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
VERSION_CODENAME={codename}
UBUNTU_CODENAME={codename}
"""


def _lsb_release(release, codename, description):
    return (
        "DISTRIB_ID=Ubuntu\n"
        f"DISTRIB_RELEASE={release}\n"
        f"DISTRIB_CODENAME={codename}\n"
        f'DISTRIB_DESCRIPTION="{description}"\n'
    )


_DEBIAN12_OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

# Each profile: cgroup (the hierarchy its systemd mounts by default: v1 on
# CentOS 7 (systemd 219), Rocky/Alma 8 (systemd 239, unified hierarchy only
# with systemd.unified_cgroup_hierarchy=1) and Ubuntu 18.04/20.04; v2 on el9,
# Ubuntu 22.04+, Debian 11+), family, major (int), osfinger Salt reports, default kernel,
# the files (relative to the node's /) that carry the identity; symlinks as
# {"link": target}.
PROFILES = {
    "centos7": {
        "cgroup": "v1",
        "family": "RedHat", "major": 7, "osfinger": "CentOS Linux-7", "osrelease": "7.7.1908",
        "kernel": "3.10.0-1062.18.1.el7.x86_64",
        "files": {
            "etc/os-release": {"link": "../usr/lib/os-release"},
            "usr/lib/os-release": _CENTOS7_OS_RELEASE,
            "etc/centos-release": "CentOS Linux release 7.7.1908 (Core)\n",
            "etc/centos-release-upstream": "Derived from Red Hat Enterprise Linux 7.7 (Source)\n",
            "etc/redhat-release": {"link": "centos-release"},
            "etc/system-release": {"link": "centos-release"},
            "etc/system-release-cpe": "cpe:/o:centos:centos:7\n",
        },
    },
    "rocky8": {
        "cgroup": "v1",
        "family": "RedHat", "major": 8, "osfinger": "Rocky Linux-8", "osrelease": "8.10",
        "kernel": "4.18.0-553.el8_10.x86_64",
        "files": {
            "etc/os-release": {"link": "../usr/lib/os-release"},
            "usr/lib/os-release": _rocky_os_release("8.10", "Green Obsidian", 8, "2029-05-31"),
            "etc/rocky-release": "Rocky Linux release 8.10 (Green Obsidian)\n",
            "etc/rocky-release-upstream": "Derived from Red Hat Enterprise Linux 8.10\n",
            "etc/redhat-release": {"link": "rocky-release"},
            "etc/system-release": {"link": "rocky-release"},
            "etc/system-release-cpe": "cpe:/o:rocky:rocky:8::baseos\n",
        },
    },
    "rocky9": {
        "cgroup": "v2",
        "family": "RedHat", "major": 9, "osfinger": "Rocky Linux-9", "osrelease": "9.6",
        "kernel": "5.14.0-570.58.1.el9_6.x86_64",
        "files": {
            "etc/os-release": {"link": "../usr/lib/os-release"},
            "usr/lib/os-release": _rocky_os_release("9.6", "Blue Onyx", 9, "2032-05-31"),
            "etc/rocky-release": "Rocky Linux release 9.6 (Blue Onyx)\n",
            "etc/rocky-release-upstream": "Derived from Red Hat Enterprise Linux 9.6\n",
            "etc/redhat-release": {"link": "rocky-release"},
            "etc/system-release": {"link": "rocky-release"},
            "etc/system-release-cpe": "cpe:/o:rocky:rocky:9::baseos\n",
        },
    },
    "alma9": {
        "cgroup": "v2",
        "family": "RedHat", "major": 9, "osfinger": "AlmaLinux-9", "osrelease": "9.6",
        "kernel": "5.14.0-570.58.1.el9_6.x86_64",
        "files": {
            "etc/os-release": {"link": "../usr/lib/os-release"},
            "usr/lib/os-release": _ALMA9_OS_RELEASE,
            "etc/almalinux-release": "AlmaLinux release 9.6 (Sage Margay)\n",
            "etc/redhat-release": {"link": "almalinux-release"},
            "etc/system-release": {"link": "almalinux-release"},
            "etc/system-release-cpe": "cpe:/o:almalinux:almalinux:9::baseos\n",
        },
    },
    "ubuntu1804": {
        "cgroup": "v1",
        "family": "Debian", "major": 18, "osfinger": "Ubuntu-18.04", "osrelease": "18.04",
        "kernel": "5.3.0-40-generic",
        "files": {
            "etc/os-release": {"link": "../usr/lib/os-release"},
            "usr/lib/os-release": _ubuntu_os_release("18.04.3", "18.04", "bionic", "Bionic Beaver"),
            "etc/lsb-release": _lsb_release("18.04", "bionic", "Ubuntu 18.04.3 LTS"),
            "etc/debian_version": "buster/sid\n",
        },
    },
    "ubuntu2204": {
        "cgroup": "v2",
        "family": "Debian", "major": 22, "osfinger": "Ubuntu-22.04", "osrelease": "22.04",
        "kernel": "5.15.0-119-generic",
        "files": {
            "etc/os-release": {"link": "../usr/lib/os-release"},
            "usr/lib/os-release": _ubuntu_os_release("22.04.5", "22.04", "jammy", "Jammy Jellyfish"),
            "etc/lsb-release": _lsb_release("22.04", "jammy", "Ubuntu 22.04.5 LTS"),
            "etc/debian_version": "bookworm/sid\n",
        },
    },
    "ubuntu2404": {
        "cgroup": "v2",
        "family": "Debian", "major": 24, "osfinger": "Ubuntu-24.04", "osrelease": "24.04",
        "kernel": "6.8.0-45-generic",
        "files": {
            "etc/os-release": {"link": "../usr/lib/os-release"},
            "usr/lib/os-release": _ubuntu_os_release("24.04.1", "24.04", "noble", "Noble Numbat"),
            "etc/lsb-release": _lsb_release("24.04", "noble", "Ubuntu 24.04.1 LTS"),
            "etc/debian_version": "trixie/sid\n",
        },
    },
    "debian12": {
        "cgroup": "v2",
        "family": "Debian", "major": 12, "osfinger": "Debian-12", "osrelease": "12",
        "kernel": "6.1.0-25-amd64",
        "files": {
            "etc/os-release": {"link": "../usr/lib/os-release"},
            "usr/lib/os-release": _DEBIAN12_OS_RELEASE,
            "etc/debian_version": "12.7\n",
        },
    },
}

# Names a cluster file may use for an OS key (the pillar's osfinger too).
ALIASES = {
    "centos": "centos7", "CentOS Linux-7": "centos7", "el7": "centos7",
    "Rocky Linux-8": "rocky8", "Rocky Linux-9": "rocky9", "AlmaLinux-9": "alma9",
    "Ubuntu-18.04": "ubuntu1804", "Ubuntu-22.04": "ubuntu2204", "Ubuntu-24.04": "ubuntu2404",
    "Debian-12": "debian12",
}


def key(name):
    """The profile key for an OS name (a key itself, or an osfinger)."""
    if name in PROFILES:
        return name
    if name in ALIASES:
        return ALIASES[name]
    raise KeyError(f"unknown OS {name!r}; known: {', '.join(sorted(PROFILES))}")


def profile(name):
    return PROFILES[key(name)]


def cgroup(name):
    """The cgroup hierarchy a node of this OS boots with: "v1" or "v2"
    (unknown names: "v2", what current systems use)."""
    try:
        return profile(name).get("cgroup", "v2")
    except KeyError:
        return "v2"


def tools(name):
    """The emulated tools a node of this OS has on its PATH."""
    prof = profile(name)
    if prof["family"] == "RedHat":
        own = REDHAT_TOOLS + (EL7_TOOLS if prof["major"] == 7 else EL8_TOOLS)
    else:
        own = DEBIAN_TOOLS
    return sorted(set(COMMON_TOOLS + own))


def tool_aliases(name):
    """Link name -> tool module name where one program answers to another
    name (el8+: yum is dnf)."""
    prof = profile(name)
    if prof["family"] == "RedHat" and prof["major"] >= 8:
        return {"yum": "dnf"}
    return {}


def foreign_tools(name):
    """Tools of the other family, which a node of this OS must not find."""
    prof = profile(name)
    if prof["family"] == "RedHat":
        # and the other releases' package tools (el7 has no dnf: a host's dnf must not show through)
        other = set(EL7_TOOLS + EL8_TOOLS + ["dnf-3"]) - set(tools(name))
        return sorted(set(DEBIAN_TOOLS) | {"apt-key", "add-apt-repository", "lsb_release"} | other)
    return sorted(set(REDHAT_TOOLS + EL7_TOOLS + EL8_TOOLS) | {"dnf-3", "rpmbuild"})
