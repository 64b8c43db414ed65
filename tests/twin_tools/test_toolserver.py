"""The nodes' tool server (twin/k8stwin/toolserver.py, toolclient.c): a
command run through it behaves as the same command started as a Python of
its own — exit code, output, stdin, environment, working directory, umask,
signals — and a command runs without it when no server answers."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TWIN = ROOT / "twin"
DISPATCH = TWIN / "bin" / "_dispatch"
sys.path.insert(0, str(TWIN))

from k8stwin import toolserver  # noqa: E402


@pytest.fixture
def served(make_node, tmp_path):
    """A rocky9 node whose tools are the dispatcher (as in a twin node), its
    tool server listening, and run(argv, via=True|False)."""
    node = make_node("rocky9")
    bindir = tmp_path / "dispatch"
    bindir.mkdir()
    for tool in ("getenforce", "sysctl", "systemd-run", "no-such-tool", "systemctl"):
        (bindir / tool).symlink_to(DISPATCH)
    client = toolserver.build_client(tmp_path / "client")
    sock = str(tmp_path / "tools.sock")
    env = dict(node.env, K8STWIN_TWIN_DIR=str(TWIN), K8STWIN_PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join([str(TWIN), str(TWIN / "k8stwin" / "site")]),
               K8STWIN_KERNEL="5.14.0-427.13.1.el9_4.x86_64")
    server = subprocess.Popen([sys.executable, "-m", "k8stwin.toolserver", sock], env=env,
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(sock):
        assert server.poll() is None, server.stderr.read()
        assert time.monotonic() < deadline, "the tool server did not listen"
        time.sleep(0.05)

    class Served:
        pass

    s = Served()
    s.node, s.sock, s.server = node, sock, server
    s.env = dict(env, K8STWIN_TOOL_CLIENT=str(client), K8STWIN_TOOL_SOCKET=sock)
    s.plain_env = env

    def run(*argv, via=True, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        return subprocess.run([str(bindir / argv[0]), *argv[1:]], env=s.env if via else s.plain_env, **kw)

    s.run = run
    s.bindir = bindir
    yield s
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def served_pids(server):
    """The PIDs of the server's children (the commands it runs now)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == server.pid:
            out.append(int(pid))
    return out


def test_a_command_through_the_server_answers_as_one_started_alone(served):
    for argv in (("getenforce",), ("sysctl", "-n", "vm.swappiness"), ("sysctl", "-w", "no.such.key=1"),
                 ("no-such-tool",), ("systemctl", "--bogus")):
        via, plain = served.run(*argv), served.run(*argv, via=False)
        assert (via.returncode, via.stdout, via.stderr) == (plain.returncode, plain.stdout, plain.stderr), argv
    assert served.run("no-such-tool").returncode == 127
    # recorded once per command, as a tool started alone records it
    lines = (served.node.dir / "commands.jsonl").read_text().splitlines()
    assert sum('"getenforce"' in line for line in lines) == 2


def test_the_caller_s_stdin_environment_directory_and_umask_reach_the_command(served, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    script = ("import os, sys; print(os.getcwd()); print(os.environ.get('CALLER')); "
              "print(oct(os.umask(0))); print(sys.stdin.read().upper()); print(os.uname().release); "
              # the parent of systemd-run (this program's parent): the server
              "print(open(f'/proc/{os.getppid()}/stat').read().rsplit(')', 1)[1].split()[1])")
    env = dict(served.env, CALLER="from-the-caller", K8STWIN_KERNEL="9.9.9-test")
    r = subprocess.run([str(served.bindir / "systemd-run"), "--scope", sys.executable, "-c", script],
                       env=env, cwd=work, input="piped in", capture_output=True, text=True, timeout=60,
                       preexec_fn=lambda: os.umask(0o027))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(work), "from-the-caller", "0o27", "PIPED IN", "9.9.9-test",
                                     str(served.server.pid)]


def test_the_tool_s_own_python_sees_the_caller_s_kernel(served):
    # sitecustomize reads $K8STWIN_KERNEL at each call, not at the server's start
    code = "import os; print(os.uname().release)"
    r = subprocess.run([str(served.bindir / "systemd-run"), "--scope", sys.executable, "-c", code],
                       env=dict(served.env, K8STWIN_KERNEL="4.18.0-553.el8_10.x86_64"),
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "4.18.0-553.el8_10.x86_64", r.stderr


def test_signals_reach_the_command_and_a_killed_caller_takes_it_along(served):
    # SIGTERM to the client: forwarded, the client exits as the command did
    proc = subprocess.Popen([str(served.bindir / "systemd-run"), "--scope", "sleep", "30"], env=served.env)
    deadline = time.monotonic() + 30
    while not served_pids(served.server):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == -signal.SIGTERM
    # SIGKILL to the client (a caller's timeout): the server kills the command
    proc = subprocess.Popen([str(served.bindir / "systemd-run"), "--scope", "sleep", "30"], env=served.env)
    deadline = time.monotonic() + 30
    while not (pids := served_pids(served.server)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.kill()
    proc.wait(30)
    deadline = time.monotonic() + 30
    def running(pid):  # alive and not a zombie; it may exit between the two reads
        try:
            return "Z" not in pathlib.Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            return False

    while any(running(pid) for pid in pids):
        assert time.monotonic() < deadline, "the command outlived its killed caller"
        time.sleep(0.05)


def test_without_a_server_the_command_starts_its_own_python(served, tmp_path):
    env = dict(served.env, K8STWIN_TOOL_SOCKET=str(tmp_path / "none.sock"))
    r = subprocess.run([str(served.bindir / "getenforce")], env=env, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "Enforcing\n"), r.stderr
    served.server.send_signal(signal.SIGTERM)
    served.server.wait(30)
    assert not os.path.exists(served.sock)
    r = served.run("sysctl", "-n", "vm.swappiness")
    assert r.returncode == 0 and r.stdout.strip().isdigit(), r.stderr


def test_the_nodes_get_the_server_unless_k8stwin_tool_server_is_0(tmp_path, monkeypatch):
    """What the supervisor hands each node: the built client (the last by
    name when several are there) and the server's socket; nothing (every
    command starts its own Python, as before the server) with
    K8STWIN_TOOL_SERVER=0 or when no client was built."""
    from k8stwin.cluster import Supervisor, Twin

    sup = object.__new__(Supervisor)  # only its twin's paths are read
    sup.twin = Twin(str(tmp_path / "run"))
    monkeypatch.delenv("K8STWIN_TOOL_SERVER", raising=False)
    assert sup.tool_env() == {}  # no tools folder yet
    tools = tmp_path / "run" / "tools"
    tools.mkdir(parents=True)
    for name in ("k8stwin-tool-aaaa", "k8stwin-tool-bbbb", "other"):
        (tools / name).write_text("")
    assert sup.tool_env() == {toolserver.CLIENT_ENV: str(tools / "k8stwin-tool-bbbb"),
                              toolserver.SOCKET_ENV: toolserver.SOCKET_PATH}
    monkeypatch.setenv("K8STWIN_TOOL_SERVER", "0")
    assert sup.tool_env() == {}
    monkeypatch.setenv("K8STWIN_TOOL_SERVER", "1")
    assert sup.tool_env()[toolserver.SOCKET_ENV] == toolserver.SOCKET_PATH
