"""systemctl, kernel modules, sysctl, swap, initramfs, boot loader, firewall, SELinux."""

import json


def test_systemctl_status_el7_vs_newer(make_node):
    c7 = make_node("centos7")
    r = c7.run("systemctl", "status", "nope.service", "-n", "0")
    assert r.returncode == 3 and "Loaded: not-found" in r.stdout
    assert c7.run("systemctl", "--version").stdout.startswith("systemd 219\n")
    r9 = make_node("rocky9").run("systemctl", "status", "nope.service", "-n", "0")
    assert r9.returncode == 4 and "Unit nope.service could not be found." in r9.stderr
    r = c7.run("systemctl", "status", "firewalld.service", "-n", "0")
    assert r.returncode == 0 and "Active: active (running)" in r.stdout
    assert c7.run("systemctl", "is-enabled", "firewalld").stdout == "enabled\n"
    r = c7.run("systemctl", "start", "docker")
    assert r.returncode == 5 and "Failed to start docker.service: Unit not found." in r.stderr
    assert c7.run("systemctl", "--bogus").returncode == 1


def test_systemctl_lifecycle_and_docker_config_check(make_node):
    n = make_node("rocky9")
    n.write("/usr/lib/systemd/system/docker.service", "[Service]\n[Install]\nWantedBy=multi-user.target\n")
    assert n.run("systemctl", "is-active", "docker").returncode == 3
    r = n.run("systemctl", "enable", "docker")
    assert r.returncode == 0 and "Created symlink /etc/systemd/system/multi-user.target.wants/docker.service" in r.stderr
    assert n.file("/etc/systemd/system/multi-user.target.wants/docker.service").is_symlink()
    n.write("/etc/docker/daemon.json", "{broken")
    r = n.run("systemctl", "start", "docker")
    assert r.returncode == 1 and "Job for docker.service failed" in r.stderr
    assert n.run("systemctl", "is-active", "docker").stdout == "failed\n"
    n.write("/etc/docker/daemon.json", "{}")
    assert n.run("systemctl", "restart", "docker").returncode == 0
    assert n.state()["services"]["docker.service"] == {"enabled": True, "active": True, "since": n.state()["services"]["docker.service"]["since"]}
    assert n.run("systemctl", "stop", "firewalld").returncode == 0
    assert n.state()["firewall"]["running"] is False
    assert n.run("systemctl", "start", "firewalld").returncode == 0
    assert n.state()["firewall"]["running"] is True


def test_systemctl_calls_the_daemons_hook_outside_the_state_lock(make_node, tmp_path):
    n = make_node("centos7")
    hook = tmp_path / "hookpkg"
    (hook / "k8stwin").mkdir(parents=True)
    # a stand-in k8stwin.daemons that takes the state lock itself and refuses kubelet
    twin = str(n.env["PYTHONPATH"])
    (hook / "k8stwin" / "__init__.py").write_text(f"__path__.append({twin + '/k8stwin'!r})\n")
    (hook / "k8stwin" / "daemons.py").write_text(
        "from k8stwin import state\n"
        "def on_service(unit, active):\n"
        "    with state.locked() as st:\n"
        "        st.setdefault('hook_calls', []).append([unit, active])\n"
        "    return 'kubelet exited' if unit == 'kubelet.service' and active else None\n")
    n.env["PYTHONPATH"] = f"{hook}:{twin}"
    n.write("/usr/lib/systemd/system/kubelet.service", "[Service]\n")
    r = n.run("systemctl", "restart", "sshd")
    assert r.returncode == 0, r.stderr
    r = n.run("systemctl", "start", "kubelet")
    assert r.returncode == 1 and "Job for kubelet.service failed" in r.stderr
    assert n.state()["hook_calls"] == [["sshd.service", True], ["kubelet.service", True]]
    assert n.state()["services"]["kubelet.service"]["failed"] is True


def test_modprobe_lsmod_and_bridge_sysctl(make_node):
    n = make_node("centos7")
    r = n.run("sysctl", "-n", "net.bridge.bridge-nf-call-iptables")
    assert r.returncode == 255 and "cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables" in r.stderr
    assert n.run("modprobe", "br_netfilter").returncode == 0
    out = n.run("lsmod").stdout.splitlines()
    assert out[0] == "Module                  Size  Used by"
    assert out[1] == "%-19s %8ld  %d" % ("br_netfilter", 24576, 0)
    assert out[2] == "%-19s %8ld  %d bridge,br_netfilter"[:0] + "%-19s %8ld  %d br_netfilter" % ("bridge", 401408, 1)
    assert n.run("sysctl", "-n", "net.bridge.bridge-nf-call-iptables").stdout == "1\n"
    r = n.run("sysctl", "-w", "net.ipv4.ip_forward=1")
    assert r.stdout == "net.ipv4.ip_forward = 1\n"
    assert (n.dir / "proc/sys/net/bridge/bridge-nf-call-iptables").read_text() == "1\n"
    r = n.run("modprobe", "nosuch")
    assert r.returncode == 1 and r.stderr == "modprobe: FATAL: Module nosuch not found.\n"
    r = make_node("rocky9").run("modprobe", "nosuch")
    assert "not found in directory /lib/modules/5.14.0-427.13.1.el9_4.x86_64" in r.stderr
    r = n.run("rmmod", "bridge")
    assert r.returncode == 1 and "rmmod: ERROR: Module bridge is in use by: br_netfilter" in r.stderr
    assert n.run("modprobe", "-r", "br_netfilter").returncode == 0
    assert n.run("sysctl", "-n", "net.bridge.bridge-nf-call-iptables").returncode == 255


def test_nvidia_module_needs_gpu_and_ko(make_node):
    n = make_node("centos7", gpus=[])
    k = "3.10.0-1062.18.1.el7.x86_64"
    n.write(f"/lib/modules/{k}/kernel/drivers/video/nvidia.ko", "ko")
    r = n.run("modprobe", "nvidia")
    assert r.returncode == 1 and r.stderr == "modprobe: ERROR: could not insert 'nvidia': No such device\n"
    g = make_node("ubuntu2204")
    g.write("/lib/modules/5.15.0-119-generic/kernel/drivers/video/nvidia.ko", "ko")
    assert g.run("modprobe", "nouveau").returncode == 0
    assert g.run("modprobe", "nvidia").returncode == 1
    r = g.run("modprobe", "-r", "nouveau")  # held by the console: only a reboot frees the GPU
    assert r.returncode == 1 and r.stderr == "modprobe: FATAL: Module nouveau is in use.\n"
    assert "%-19s %8ld  %d" % ("nouveau", 2240512, 1) in g.run("lsmod").stdout.splitlines()
    g.write("/etc/modprobe.d/blacklist-nouveau.conf", "blacklist nouveau\noptions nouveau modeset=0\n")
    assert g.run("update-initramfs", "-u").returncode == 0
    g.py("from k8stwin import boot; boot.on_boot()")
    assert "nouveau" not in g.state()["modules"] and "nvidia" in g.state()["modules"]


def test_sysctl_system_and_swap(make_node):
    n = make_node("ubuntu2204")
    n.write("/etc/sysctl.d/99-k8s.conf", "net.bridge.bridge-nf-call-iptables = 1\nnet.ipv4.ip_forward = 1\n")
    r = n.run("sysctl", "--system")
    assert "* Applying /etc/sysctl.d/99-k8s.conf ..." in r.stdout and "net.ipv4.ip_forward = 1" in r.stdout
    assert "net.bridge.bridge-nf-call-iptables = 1" not in r.stdout
    assert n.state()["swap"]["active"] is True
    assert "/swap.img" in (n.dir / "proc/swaps").read_text()
    assert n.run("swapoff", "-a").returncode == 0
    assert n.state()["swap"]["active"] is False
    assert "partition" not in (n.dir / "proc/swaps").read_text()
    assert n.run("swapoff", "--bogus").returncode == 1
    n.py("from k8stwin import boot; boot.on_boot()")  # fstab still has the swap line
    assert n.state()["swap"]["active"] is True and "/swap.img" in (n.dir / "proc/swaps").read_text()


def test_dracut_and_update_initramfs(make_node):
    n = make_node("centos7")
    k = "3.10.0-1062.18.1.el7.x86_64"
    r = n.run("dracut")
    assert r.returncode == 1 and f"dracut: Will not override existing initramfs (/boot/initramfs-{k}.img) without --force" in r.stderr
    n.write("/etc/modprobe.d/blacklist-nouveau.conf", "blacklist nouveau\noptions nouveau modeset=0\n")
    assert n.run("dracut", "-f").returncode == 0
    manifest = json.loads(n.file(f"/boot/initramfs-{k}.img").read_text())
    assert manifest["blacklist"] == ["nouveau"] and manifest["kernel"] == k
    r = n.run("dracut", "-f", "/boot/initramfs-9.9.img", "9.9")
    assert r.returncode == 1 and "dracut: Cannot find module directory /lib/modules/9.9/" in r.stderr
    u = make_node("ubuntu2204")
    r = u.run("update-initramfs", "-u")
    assert r.stdout == "update-initramfs: Generating /boot/initrd.img-5.15.0-119-generic\n"
    # a kernel without /lib/modules still gets an image, with warnings (initramfs-tools
    # 0.140/0.142: tests/twin_judges/test_conformance_initramfs.py)
    r = u.run("update-initramfs", "-u", "-k", "9.9")
    assert r.returncode == 0 and "W: missing /lib/modules/9.9" in r.stderr
    assert u.run("update-initramfs").returncode == 2


def test_boot_blacklist_takes_effect_only_through_the_initramfs(make_node):
    n = make_node("centos7")
    boot = "from k8stwin import boot; import json; print(json.dumps(boot.on_boot()))"
    assert "nouveau" in json.loads(n.py(boot))["modules"]
    n.write("/etc/modprobe.d/blacklist-nouveau.conf", "blacklist nouveau\n")
    n.write("/etc/modules-load.d/k8s.conf", "br_netfilter\noverlay\n")
    n.write("/etc/sysctl.d/99-k8s.conf", "net.bridge.bridge-nf-call-iptables = 1\nnet.ipv4.ip_forward = 1\n")
    res = json.loads(n.py(boot))
    assert "nouveau" in res["modules"]  # initramfs not rebuilt yet
    assert n.run("dracut", "-f").returncode == 0
    res = json.loads(n.py(boot))
    assert "nouveau" not in res["modules"] and res["modules"][-2:] == ["br_netfilter", "overlay"]
    st = n.state()
    assert st["sysctl"]["net.ipv4.ip_forward"] == "1" and st["reboots"] == 3
    assert st["swap"]["active"] is True and st["selinux"]["mode"] == "enforcing"


def test_el7_grub_default_saved_and_mkconfig(make_node):
    n = make_node("centos7")
    n.write("/boot/vmlinuz-5.4.278-1.el7.elrepo.x86_64", "k")
    n.file("/lib/modules/5.4.278-1.el7.elrepo.x86_64").mkdir(parents=True)
    r = n.run("grub2-mkconfig", "-o", "/boot/grub2/grub.cfg")
    assert r.returncode == 0 and r.stderr.splitlines()[0] == "Generating grub configuration file ..."
    assert "Found linux image: /boot/vmlinuz-5.4.278-1.el7.elrepo.x86_64" in r.stderr
    resolve = "from k8stwin import boot; print(boot.resolve_default())"
    assert n.py(resolve).strip() == "3.10.0-1062.18.1.el7.x86_64"  # saved_entry still names the old title
    text = n.file("/etc/default/grub").read_text().replace("GRUB_DEFAULT=saved", "GRUB_DEFAULT=0")
    n.write("/etc/default/grub", text)
    n.run("grub2-mkconfig", "-o", "/boot/grub2/grub.cfg")
    assert n.py(resolve).strip() == "5.4.278-1.el7.elrepo.x86_64"
    info = n.run("grubby", "--info=ALL").stdout
    assert "kernel=/boot/vmlinuz-5.4.278-1.el7.elrepo.x86_64" in info


def test_el9_grubby_bls(make_node):
    n = make_node("rocky9")
    n.write("/etc/yum.repos.d/elrepo.repo", "[elrepo-kernel]\nname=ELRepo\nbaseurl=https://elrepo.org/linux/kernel/el9/$basearch/\ngpgcheck=1\ngpgkey=https://www.elrepo.org/RPM-GPG-KEY-elrepo.org\n")
    r = n.run("dnf", "-y", "--best", "--allowerasing", "--disablerepo=*", "--enablerepo=elrepo-kernel", "install", "kernel-lt", "kernel-lt-devel")
    assert r.returncode == 0, r.stdout + r.stderr
    new = "6.1.158-1.el9.elrepo.x86_64"
    assert n.run("grubby", "--default-kernel").stdout == "/boot/vmlinuz-5.14.0-427.13.1.el9_4.x86_64\n"
    assert n.run("grubby", "--default-index").stdout == "1\n"
    r = n.run("grubby", f"--set-default=/boot/vmlinuz-{new}")
    assert r.returncode == 0 and f"with index 0 and kernel /boot/vmlinuz-{new}" in r.stderr
    assert n.run("grubby", "--default-kernel").stdout == f"/boot/vmlinuz-{new}\n"
    info = n.run("grubby", f"--info=/boot/vmlinuz-{new}").stdout
    assert f'kernel="/boot/vmlinuz-{new}"' in info and info.startswith("index=0\n")
    r = n.run("grubby", "--set-default=/boot/vmlinuz-nope")
    assert r.returncode == 1 and "The param /boot/vmlinuz-nope is incorrect" in r.stderr
    assert n.py("from k8stwin import boot; print(boot.resolve_default())").strip() == new


def test_firewall_cmd(make_node):
    n = make_node("centos7")
    assert n.run("firewall-cmd", "--state").stdout == "running\n"
    r = n.run("firewall-cmd", "--permanent", "--add-port=6443/tcp")
    assert (r.returncode, r.stdout) == (0, "success\n")
    r = n.run("firewall-cmd", "--permanent", "--add-port=6443/tcp")
    assert r.returncode == 0 and r.stderr == "Warning: ALREADY_ENABLED: 6443:tcp\n"
    assert n.run("firewall-cmd", "--list-ports").stdout == "\n"
    n.run("firewall-cmd", "--reload")
    assert n.run("firewall-cmd", "--list-ports").stdout == "6443/tcp\n"
    r = n.run("firewall-cmd", "--permanent", "--add-port=99999/tcp")
    assert r.returncode == 102 and "INVALID_PORT" in r.stderr
    n.run("systemctl", "stop", "firewalld")
    r = n.run("firewall-cmd", "--state")
    assert (r.returncode, r.stderr) == (252, "not running\n")
    r = n.run("firewall-cmd", "--permanent", "--add-port=10250/tcp")
    assert (r.returncode, r.stderr) == (252, "FirewallD is not running\n")


def test_ufw(make_node):
    n = make_node("ubuntu2204")
    assert n.run("ufw", "status").stdout == "Status: inactive\n"
    assert n.run("ufw", "allow", "6443/tcp").stdout == "Rules updated\nRules updated (v6)\n"
    assert n.run("ufw", "--force", "enable").stdout == "Firewall is active and enabled on system startup\n"
    assert n.run("ufw", "allow", "10250/tcp").stdout == "Rule added\nRule added (v6)\n"
    assert n.run("ufw", "allow", "6443/tcp").stdout == "Skipping adding existing rule\nSkipping adding existing rule (v6)\n"
    lines = n.run("ufw", "status").stdout.splitlines()
    # the header is not padded after 'From' (tests/twin_judges/test_conformance_ufw.py)
    assert lines[:3] == ["Status: active", "", ("%-26s %-12s%-26s" % ("To", "Action", "From")).rstrip()]
    assert "%-26s %-12s%-26s" % ("6443/tcp (v6)", "ALLOW", "Anywhere (v6)") in lines


def test_selinux(make_node):
    n = make_node("centos7")
    assert n.run("getenforce").stdout == "Enforcing\n"
    assert n.run("setenforce", "0").returncode == 0
    assert n.run("getenforce").stdout == "Permissive\n"
    assert n.run("setenforce", "maybe").returncode == 1
    n.write("/etc/selinux/config", "SELINUX=disabled\n")
    n.py("from k8stwin import boot; boot.on_boot()")
    r = n.run("setenforce", "0")
    assert (r.returncode, r.stderr) == (1, "setenforce: SELinux is disabled\n")
    assert n.run("getenforce").stdout == "Disabled\n"
