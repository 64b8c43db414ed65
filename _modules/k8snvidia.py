"""
K8sNvidia's map: the node's effective configuration, validated, and the
artifact mirror it names.

The state tree reads its configuration through ``salt/map.jinja``, which
calls :py:func:`config`: the one place where defaults, OS family, OS release,
pillar and per-node overrides are merged and validated.
"""

import logging

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "k8snvidia"


def __virtual__():
    return __virtualname__


def _gpu_names():
    """GPU models of this node that its nvidia grain saw (the rule is
    k8snvidia.gpu_names, shared with cluster.view)."""
    return __utils__["k8snvidia.gpu_names"](__grains__.get("nvidia"))


def cached():
    """
    The configuration :py:func:`config` built earlier in this job, or None:
    ``salt/map.jinja`` asks first, so the SLS files after the first do not
    fetch and parse the three parameter files again. A configuration found
    invalid earlier raises, as :py:func:`config` does.

    CLI Example:

    .. code-block:: bash

        salt-call k8snvidia.cached
    """
    if "k8snvidia.config.failed" in __context__:
        raise CommandExecutionError("K8sNvidia pillar: invalid (its problems are listed with the first SLS)")
    return __context__.get("k8snvidia.config")


def config(defaults, os_family, osfinger, validate=True):
    """
    Build this node's effective configuration from the map's three parameter
    layers plus the pillar; raise with every problem when it is invalid
    (checked against the pillar schema, ``_utils/pillar_schema.py``).
    Warnings (a Kubernetes minor past its end of life, an OS release the map
    has no entry for) are logged.

    CLI Example:

    .. code-block:: bash

        salt-call --local k8snvidia.config "{}" "{}" "{}"
    """
    cache_key = "k8snvidia.config"
    if validate:
        # every SLS imports the map: built once, the full report of an
        # invalid pillar with the first one
        built = cached()
        if built is not None:
            return built
    params = {"defaults": defaults, "os_family": os_family, "osfinger": osfinger}
    pillar_cfg = __pillar__.get("k8snvidia")
    schema = __utils__["pillar_schema.schema"]()
    facts = __utils__["pillar_schema.facts"]()
    gpu_check = __utils__.get("nvidia_gpu.driver_problems") if validate else None
    cfg, problems, warnings = __utils__["k8snvidia.config_for"](
        params, pillar_cfg, __grains__["id"], __grains__, gpus_seen=_gpu_names(), gpu_check=gpu_check,
        schema=schema, facts=facts,
    )
    if validate:
        for line in warnings:
            log.warning("K8sNvidia pillar: %s", line)
        if problems:
            __context__[f"{cache_key}.failed"] = True
            raise CommandExecutionError(__utils__["k8snvidia.report"](problems))
        __context__[cache_key] = cfg
    return cfg


def mirror_source(url):
    """
    Where ``url``'s file is found in the artifact mirror (the option
    ``k8snvidia.artifact_mirror`` through ``config.get``: a directory or
    ``file://`` URL holding files by basename, for air-gapped nodes), or
    None. The one lookup (``host.mirror_source``) that the SLS files (keys,
    packages) and ``nvidia_driver.fetch`` use.

    CLI Example:

    .. code-block:: bash

        salt '*' k8snvidia.mirror_source https://download.docker.com/linux/ubuntu/gpg
    """
    return __utils__["host.artifact_source"](url, __opts__, __salt__.get("config.get"))
