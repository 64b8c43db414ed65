"""Loaded by every Python process of a twin node (its PYTHONPATH has this
directory): the kernel release os.uname() and platform.uname() report is the
node's running kernel ($K8STWIN_KERNEL), so Salt's kmod module and others that
read the release from uname see the twin's kernel, not the host's. The
variable is read at each call: a tool forked from the node's tool server
(k8stwin.toolserver) has its caller's environment, not the server's."""

import os as _os

if "K8STWIN_KERNEL" in _os.environ:
    _real_uname = _os.uname

    class _Uname(tuple):
        n_fields = 5

        sysname = property(lambda self: self[0])
        nodename = property(lambda self: self[1])
        release = property(lambda self: self[2])
        version = property(lambda self: self[3])
        machine = property(lambda self: self[4])

    def _uname():
        r = _real_uname()
        return _Uname((r.sysname, r.nodename, _os.environ.get("K8STWIN_KERNEL") or r.release, r.version, r.machine))

    _os.uname = _uname
