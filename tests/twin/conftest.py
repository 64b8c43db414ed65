"""The cluster twin as a pytest fixture (twin/k8stwin/cluster.py).

``twin`` (session-scoped) is a :class:`TwinHandle`; nothing runs until a test
calls ``twin.up(...)``, which is a no-op when the same cluster and pillar are
already up::

    def test_x(twin):
        twin.up("twin/clusters/seed.yaml")           # or a dict {"nodes": [...]}
        assert twin.salt("*", "test.ping") == {...}   # salt --out=json --static
        proc = twin.node_exec("node-110", "cat /etc/os-release")
        twin.reboot("node-110")                       # waits for the minion
        rec = twin.records()                          # commands, reboots, runs

Everything is taken down at the end of the session (and on a failed up).
Set K8STWIN_TEST_KEEP=1 to leave the last twin up for inspection.
"""

import hashlib
import json
import os
import pathlib
import shutil
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "twin"))

from k8stwin.cluster import Twin, TwinError  # noqa: E402

CLUSTERS = ROOT / "twin" / "clusters"


def pytest_configure(config):
    config.addinivalue_line("markers", "twin_scale: the 16-node twin smoke test (runs in CI; about a minute)")


class TwinHandle:
    """A twin for tests: up(cluster, pillar), salt(...), node_exec(...), records(), down()."""

    def __init__(self, base):
        self.base = pathlib.Path(base)
        self.twin = Twin(str(self.base / "run"))
        self.key = None

    @property
    def run_dir(self):
        return pathlib.Path(self.twin.run)

    def _cluster_file(self, cluster):
        if cluster is None:
            return str(CLUSTERS / "seed.yaml")
        if isinstance(cluster, dict):
            import yaml

            text = yaml.safe_dump(cluster)
            path = self.base / f"cluster-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
            path.write_text(text)
            return str(path)
        path = pathlib.Path(cluster)
        return str(path if path.is_absolute() else ROOT / path)

    def up(self, cluster=None, pillar=None, timeout=300, fresh=False):
        """Bring up ``cluster`` (a file, a dict, or the seed) with ``pillar``
        (a directory; the repo's pillar by default). Reuses a twin that is
        already up with the same inputs unless ``fresh``."""
        cfile = self._cluster_file(cluster)
        pdir = str(pillar or ROOT / "pillar")
        key = (pathlib.Path(cfile).read_text(), pdir)
        if not fresh and self.key == key and self.twin.is_up():
            return self
        self.down()
        try:
            keep = os.environ.get("K8STWIN_TEST_KEEP")
            self.twin.up(cfile, pdir, timeout=timeout, owner_pid=None if keep else os.getpid())
        except TwinError:
            self.key = None
            raise
        self.key = key
        return self

    def salt(self, *args, timeout=None):
        """``salt --out=json --static ARGS`` against the twin; parsed JSON."""
        return self.twin.salt(*args, timeout=timeout)

    def salt_run(self, *args, timeout=None):
        """``salt-run --out=json ARGS``; parsed JSON."""
        return self.twin.salt(*args, tool="salt-run", timeout=timeout)

    def command(self, *argv, timeout=None):
        """Any salt/salt-run/salt-key command line; the CompletedProcess."""
        return self.twin.command(list(argv), timeout=timeout)

    def node_exec(self, node, cmd, check=False, timeout=120):
        """Run ``cmd`` (list, or string for sh -c) inside ``node``."""
        return self.twin.node_exec(node, cmd, check=check, timeout=timeout)

    def node_state(self, node):
        return self.twin.node_state(node)

    def node_dir(self, node):
        return pathlib.Path(self.twin.node_dir(node))

    def status(self):
        return self.twin.status()

    def reboot(self, node, wait=True, timeout=240):
        return self.twin.reboot(node, wait=wait, timeout=timeout)

    def wait_rebooted(self, node, before, timeout=240):
        return self.twin.wait_rebooted(node, before, timeout=timeout)

    def records(self):
        """records.json as a dict: nodes -> {commands, reboots, ...}, runs, events."""
        return self.twin.records(write=True)

    def events(self, node=None, kind=None):
        return self.twin._events(node, kind)

    def down(self):
        self.key = None
        return self.twin.down()


@pytest.fixture(scope="session")
def twin():
    if os.geteuid() != 0:
        pytest.skip("the cluster twin needs root (mount namespaces, overlayfs)")
    # Short path: Salt's unix sockets live under the run directory.
    base = tempfile.mkdtemp(prefix="k8stwin-", dir="/tmp")
    handle = TwinHandle(base)
    try:
        yield handle
    finally:
        if os.environ.get("K8STWIN_TEST_KEEP"):
            sys.stderr.write(f"\nK8STWIN_TEST_KEEP: twin left up in {handle.run_dir}\n")
        else:
            handle.down()
            shutil.rmtree(base, ignore_errors=True)


def read_json(text):
    return json.loads(text) if text.strip() else None
