"""The containerd states (_states/containerd.py): config.toml made loadable
at the installed containerd's config version without rewriting it
(containerd.config_managed) and drop-ins rendered at the main file's
version (containerd.dropin_managed); a prediction under test, a change,
nothing on the second run, and the refusals. Salt's dunders through
salt-factories' loader mock (``configure_loader_modules``): ``pkg.version``
and ``cmd.run_all`` are fakes, ``file.managed`` (``__states__``) is FileStates
writing to a scratch directory; no containerd runs."""

import json
import os

import jinja2
import pytest

from tests.conftest import ROOT, load_source, loader_globals

state = load_source("_states/containerd.py")

IMPORTS = "/etc/containerd/conf.d/*.toml"
CRI_TEMPLATE = "salt://docker/files/containerd-cri.toml.jinja"
CRI_CONTEXT = {"systemd_cgroup": True, "sandbox_image": "registry.k8s.io/pause:3.10", "nvidia": False,
               "nvidia_binary": None, "nvidia_default": False}


class FileStates:
    """Salt's ``file.managed`` state as a test double: it writes ``contents``
    (or the Jinja template ``source``, a ``salt://`` path of this repo
    rendered with ``context``) to a scratch path, answers as Salt does
    (changes only when the content or mode differ, a prediction under
    ``test``), and records every call."""

    def __init__(self, opts):
        self.opts = opts  # the module's __opts__ (its "test")
        self.calls = []

    def states(self):
        return {"file.managed": self.managed}

    def render(self, source, context):
        assert source.startswith("salt://"), source
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROOT / "salt")), undefined=jinja2.StrictUndefined)
        env.filters["json"] = json.dumps
        return env.get_template(source[len("salt://"):]).render(**(context or {}))

    def managed(self, name, contents=None, source=None, template=None, context=None, makedirs=False, mode=None,
                **kwargs):
        assert not kwargs, kwargs
        self.calls.append({"name": name, "contents": contents, "source": source, "template": template,
                           "context": context, "makedirs": makedirs, "mode": mode})
        if source is not None:
            assert template == "jinja" and contents is None
            contents = self.render(source, context)
        old = None
        if os.path.exists(name):
            with open(name, encoding="utf-8") as fh:
                old = fh.read()
        changes = {}
        if old != contents:
            changes["diff"] = "New file" if old is None else "changed"
        if mode is not None and (old is None or oct(os.stat(name).st_mode & 0o777)[2:] != mode.lstrip("0")):
            changes["mode"] = mode
        ret = {"name": name, "changes": changes, "result": True, "comment": f"File {name} is in the correct state"}
        if not changes:
            return ret
        if self.opts.get("test"):
            ret.update(result=None, comment=f"The file {name} is set to be changed")
            return ret
        if not os.path.isdir(os.path.dirname(name)):
            if not makedirs:
                return dict(ret, result=False, changes={}, comment=f"Parent directory not present for {name}")
            os.makedirs(os.path.dirname(name))
        with open(name, "w", encoding="utf-8") as fh:
            fh.write(contents)
        if mode is not None:
            os.chmod(name, int(mode, 8))
        ret["comment"] = f"File {name} updated"
        return ret


class Host:
    """What the node has: its packages (``pkg.version``), a containerd in PATH
    or not (``containerd --version``), and the calls the state made."""

    def __init__(self):
        self.packages = {"containerd.io": "2.1.9-1"}
        self.binary = None  # the `containerd --version` line of a containerd installed without a package
        self.asked = []
        self.ran = []

    def pkg_version(self, name):
        self.asked.append(name)
        return self.packages.get(name, "")

    def run_all(self, cmd, python_shell=True, **kwargs):
        assert python_shell is False
        self.ran.append(cmd)
        assert cmd == ["/usr/bin/containerd", "--version"], cmd
        return {"retcode": 0, "stdout": self.binary, "stderr": ""}

    def which(self, name):
        assert name == "containerd"
        return "/usr/bin/containerd" if self.binary else None


@pytest.fixture
def host(monkeypatch):
    import salt.utils.path

    host = Host()
    monkeypatch.setattr(salt.utils.path, "which", host.which)
    return host


@pytest.fixture
def files():
    """The fake file.managed of this test (``__states__``), with its calls;
    its ``opts`` are the state's ``__opts__``."""
    return FileStates({"test": False})


@pytest.fixture
def configure_loader_modules(host, files):
    return {state: loader_globals(
        __opts__=files.opts,
        __salt__={"pkg.version": host.pkg_version, "cmd.run_all": host.run_all},
        __states__=files.states(),
    )}


@pytest.fixture
def etc(tmp_path):
    path = tmp_path / "etc/containerd"
    path.mkdir(parents=True)
    return path


def _config(etc, **kw):
    return state.config_managed(str(etc / "config.toml"), IMPORTS, **kw)


def _dropin(etc, **kw):
    kw.setdefault("context", CRI_CONTEXT)
    return state.dropin_managed(str(etc / "conf.d/10-k8snvidia-cri.toml"), str(etc / "config.toml"), CRI_TEMPLATE,
                                **kw)


# ------------------------------------------------------------ config_managed
def test_config_predicts_then_writes_then_changes_nothing(etc, files):
    config = etc / "config.toml"
    state.__opts__["test"] = True
    ret = _config(etc)
    assert ret["result"] is None and ret["changes"], ret
    assert ret["changes"]["containerd"] == f"version = 3 (containerd 2.1); imports {IMPORTS}"
    assert ret["comment"].endswith("(config version 3)") and ret["name"] == str(config)
    assert not config.exists()
    state.__opts__["test"] = False
    ret = _config(etc)
    assert ret["result"] is True and ret["changes"]["containerd"] == f"version = 3 (containerd 2.1); imports {IMPORTS}"
    assert config.read_text() == f'version = 3\nimports = ["{IMPORTS}"]\n'
    assert files.calls[-1]["makedirs"] is True and files.calls[-1]["mode"] == "0644"
    for test in (True, False):
        state.__opts__["test"] = test
        ret = _config(etc)
        assert ret["result"] is True and ret["changes"] == {}, ret
        assert ret["comment"] == f"File {config} is in the correct state (config version 3)"
    assert config.read_text() == f'version = 3\nimports = ["{IMPORTS}"]\n'


def test_config_keeps_comments_and_settings_and_fixes_plugin_ids(etc):
    """A distribution's config.toml (containerd.io ships ``disabled_plugins
    = ["cri"]``): the CRI plugin is enabled again for Kubernetes, short
    plugin names become full ids, comments and other settings stay."""
    config = etc / "config.toml"
    config.write_text('#   Copyright 2018-2022 Docker Inc.\n\ndisabled_plugins = ["cri", "aufs",\n  "zfs"]\n'
                      'root = "/var/lib/containerd"\n')
    ret = _config(etc)
    assert ret["result"] is True
    assert ret["changes"]["containerd"] == (
        "version = 3 (containerd 2.1); disabled_plugins: 'cri' removed (containerd is the Kubernetes CRI); "
        "disabled_plugins: 'aufs' -> 'io.containerd.snapshotter.v1.aufs'; "
        f"disabled_plugins: 'zfs' -> 'io.containerd.snapshotter.v1.zfs'; imports {IMPORTS}")
    assert config.read_text() == (
        f'version = 3\nimports = ["{IMPORTS}"]\n#   Copyright 2018-2022 Docker Inc.\n\n'
        'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.zfs"]\n'
        'root = "/var/lib/containerd"\n')
    assert _config(etc)["changes"] == {}


def test_config_without_cri_keeps_the_cri_disabled_under_its_full_id(etc, host):
    config = etc / "config.toml"
    config.write_text('version = 2\ndisabled_plugins = ["cri"]\nimports = ["/etc/other/*.toml"]\n')
    host.packages = {"containerd.io": "1.6.33-3.1.el7"}
    ret = _config(etc, cri=False)
    assert ret["result"] is True
    assert ret["changes"]["containerd"] == f"disabled_plugins: 'cri' -> 'io.containerd.grpc.v1.cri'; imports {IMPORTS}"
    assert config.read_text() == (
        f'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\nimports = ["{IMPORTS}", "/etc/other/*.toml"]\n')
    assert _config(etc, cri=False)["changes"] == {}


@pytest.mark.parametrize("package, version", [
    ("1.6.33-3.1.el7", 2),
    ("1:1.7.28-1", 2),  # an epoch
    ("2.0.5-1", 3),
    ("2.2.1-1", 3),
    ("2.3.0~rc.1-1", 4),
])
def test_config_version_follows_the_installed_package(etc, host, package, version):
    host.packages = {"containerd": package}  # not containerd.io: the next package of the list
    ret = _config(etc)
    assert ret["result"] is True and ret["comment"].endswith(f"(config version {version})")
    assert (etc / "config.toml").read_text().startswith(f"version = {version}\n")
    assert host.asked == ["containerd.io", "containerd"] and host.ran == []


def test_containerd_without_a_package_answers_its_version_once(etc, host):
    """A containerd installed from a tarball: ``containerd --version``, read
    once per run (``__context__``)."""
    host.packages = {}
    host.binary = "containerd github.com/containerd/containerd/v2 2.1.9 1e8ee3ed2a6c8d6a6ab4ea2f9f4bb3c6b9d18d0c"
    assert _config(etc)["comment"].endswith("(config version 3)")
    assert _dropin(etc)["comment"].endswith("(config version 3)")
    assert host.ran == [["/usr/bin/containerd", "--version"]] and host.asked == ["containerd.io", "containerd"]
    assert state.__context__["containerd.release"] == (2, 1)


@pytest.mark.parametrize("test", [True, False])
def test_containerd_not_installed(etc, host, files, test):
    """No package and no containerd in PATH: the config version cannot be
    chosen. A prediction says it follows the install; a real run fails."""
    host.packages = {}
    state.__opts__["test"] = test
    for ret in (_config(etc), _dropin(etc)):
        if test:
            assert ret["result"] is None
            assert "the config version follows the installed containerd, which is not installed yet" in ret["comment"]
        else:
            assert ret["result"] is False
            assert ("containerd is not installed (no package containerd.io, containerd and no containerd in PATH): "
                    "its config version cannot be chosen") in ret["comment"]
        assert ret["changes"] == {}
    assert files.calls == [] and not (etc / "config.toml").exists()
    assert "containerd.release" not in state.__context__  # asked again once it is installed


@pytest.mark.parametrize("text, release, why", [
    ("version = 3\n", "1.7.28-1", "it has version = 3 but the installed containerd 1.7 reads config versions up to 2"),
    ('version = "two"\n', "2.1.9-1", "its version '\"two\"' is not a number"),
    ('version = 1\n[plugins.cri]\n  sandbox_image = "pause:3.1"\n', "1.6.33-3.1.el7",
     "it is a version 1 config with plugin sections; migrate it (containerd config migrate)"),
])
def test_config_containerd_cannot_load_is_refused_untouched(etc, host, files, text, release, why):
    config = etc / "config.toml"
    config.write_text(text)
    host.packages = {"containerd.io": release}
    rel = ".".join(release.split(".")[:2])
    for test in (True, False):
        state.__opts__["test"] = test
        ret = _config(etc)
        assert ret["result"] is False and ret["changes"] == {}
        assert ret["comment"] == f"{config} cannot be loaded by containerd {rel}: {why}"
        ret = _dropin(etc)
        assert ret["result"] is False and ret["comment"] == f"{config} cannot be loaded by containerd {rel}: {why}"
    assert files.calls == [] and config.read_text() == text


def test_an_older_config_with_tables_keeps_its_version(etc):
    """A version 2 config with plugin sections on containerd 2.1 stays at
    version 2 (containerd 2.x migrates it when loading); the drop-ins
    follow it."""
    config = etc / "config.toml"
    text = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "pause:3.9"\n'
    config.write_text(text)
    ret = _config(etc)
    assert ret["result"] is True and ret["changes"]["containerd"] == f"imports {IMPORTS}"
    assert ret["comment"].endswith("(config version 2)")
    assert config.read_text() == f'version = 2\nimports = ["{IMPORTS}"]\n' + text[len("version = 2\n"):]
    ret = _dropin(etc)
    assert ret["result"] is True and ret["comment"].endswith("(config version 2)")
    dropin = (etc / "conf.d/10-k8snvidia-cri.toml").read_text()
    assert "version = 2\n" in dropin and '[plugins."io.containerd.grpc.v1.cri"]' in dropin


# ------------------------------------------------------------ dropin_managed
def test_dropin_predicts_then_writes_then_changes_nothing(etc, files):
    dropin = etc / "conf.d/10-k8snvidia-cri.toml"
    assert _config(etc)["result"] is True
    state.__opts__["test"] = True
    ret = _dropin(etc)
    assert ret["result"] is None and ret["changes"] and not dropin.exists()
    assert ret["comment"] == f"The file {dropin} is set to be changed (config version 3)"
    call = files.calls[-1]
    assert call["source"] == CRI_TEMPLATE and call["template"] == "jinja" and call["makedirs"] is True
    assert call["context"] == dict(CRI_CONTEXT, version=3)
    state.__opts__["test"] = False
    ret = _dropin(etc)
    assert ret["result"] is True and ret["changes"] and ret["name"] == str(dropin)
    text = dropin.read_text()
    assert "version = 3\n" in text and '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]' in text
    assert 'sandbox = "registry.k8s.io/pause:3.10"' in text and "SystemdCgroup = true" in text
    for test in (True, False):
        state.__opts__["test"] = test
        ret = _dropin(etc)
        assert ret["result"] is True and ret["changes"] == {}
        assert ret["comment"] == f"File {dropin} is in the correct state (config version 3)"
    assert dropin.read_text() == text


def test_dropin_before_the_main_file_exists_uses_the_installed_version(etc, host):
    """The main file is not written yet (test=True of a fresh node): the
    drop-in is planned at the version config_managed will give it."""
    host.packages = {"containerd.io": "2.3.1-1"}
    state.__opts__["test"] = True
    ret = _dropin(etc, context=dict(CRI_CONTEXT, nvidia=True, nvidia_binary="/usr/bin/nvidia-container-runtime"))
    assert ret["result"] is None and ret["comment"].endswith("(config version 4)")
    assert not (etc / "config.toml").exists()
