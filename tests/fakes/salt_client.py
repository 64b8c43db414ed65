"""A fake Salt LocalClient and master event bus for the runner tests
(_runners/cluster_run.py, _runners/cluster.py): the nodes' answers come
from a function, every call is recorded."""

NODES = {
    "cluster-master": {"role": "control-plane", "ip": "192.168.0.113"},
    "node-105": {"role": "worker", "ip": "192.168.0.105", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
    "node-110": {"role": "worker", "ip": "192.168.0.110", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
}
OK_STATE = {"file_|-x_|-x_|-managed": {"result": True, "changes": {}, "comment": "ok"}}


class FakeClient:
    """LocalClient.cmd: ``answers(nid, fun, arg)`` returns a node's answer, or
    None when the node does not answer."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def cmd(self, tgt, fun, arg=(), tgt_type="glob", timeout=None, full_return=False, kwarg=None, **kwargs):
        ids = tgt if isinstance(tgt, list) else [tgt]
        self.calls.append({"ids": list(ids), "fun": fun, "arg": list(arg or []), "timeout": timeout})
        out = {}
        for nid in ids:
            ret = self.answers(nid, fun, list(arg or []))
            if ret is None:
                continue
            out[nid] = {"ret": ret, "retcode": 0} if full_return else ret
        return out

    def cmd_async(self, tgt, fun, **kwargs):
        self.calls.append({"ids": list(tgt), "fun": fun, "async": True})

    def applied(self):
        return [(c["ids"], c["arg"]) for c in self.calls if c["fun"] == "state.apply"]


class FakeBus:
    def __init__(self, events):
        self.events = list(events)

    def get_event(self, wait=5, full=True):
        return self.events.pop(0) if self.events else None


def default_answers(nid, fun, arg):
    if fun == "test.ping":
        return True
    if fun == "state.apply":
        return OK_STATE
    if fun == "reboot_pending.reasons":
        return []
    return True
