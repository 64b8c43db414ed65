"""nvidia_gpu.violations: the one place the driver branch and open-module
rules are applied, by the pillar check (driver_problems) and by the driver
state's plan (nvidia_driver.decide) alike."""

import pytest

from tests.conftest import load_source

gpu = load_source("_utils/nvidia_gpu.py", "k8snvidia_test_rules_gpu")
state = load_source("_states/nvidia_driver.py", "k8snvidia_test_rules_state")


def rules(archs, branch, mtype="auto"):
    return [v["rule"] for v in gpu.violations(gpu.recommend(archs), branch, mtype)]


@pytest.mark.parametrize("archs, branch, mtype, want", [
    (["Pascal"], 580, "auto", []),
    (["Pascal"], 590, "auto", ["max_branch"]),
    (["Kepler"], 535, "proprietary", ["max_branch"]),
    (["Blackwell"], 565, "auto", ["min_branch"]),
    (["Pascal"], 580, "open", ["open_unsupported"]),
    (["Blackwell"], 580, "proprietary", ["open_required"]),
    (["Turing"], 510, "open", ["open_min_branch"]),
    (["Turing"], 510, "proprietary", []),
    (["Pascal", "Blackwell"], 580, "auto", ["conflict"]),
    ([], 999, "open", []),
    (["Ampere"], None, "open", []),
])
def test_violations(archs, branch, mtype, want):
    assert rules(archs, branch, mtype) == want


def test_recommend_names_open_required():
    assert gpu.recommend(["Blackwell"])["open_required"] is True
    assert gpu.recommend(["Hopper"])["open_required"] is False and gpu.recommend([])["open_required"] is False


def test_chosen_module_type():
    assert gpu.chosen_module_type("auto", gpu.recommend(["Turing"])) == "open"
    assert gpu.chosen_module_type(None, gpu.recommend(["Pascal"])) == "proprietary"
    assert gpu.chosen_module_type("", {}) == "proprietary"
    assert gpu.chosen_module_type("proprietary", gpu.recommend(["Turing"])) == "proprietary"


def test_the_pillar_check_and_the_state_refuse_alike():
    """Every combination the pillar check refuses, the driver state's plan
    refuses too (and the other way round), through the same rules."""
    names = {"Pascal": "NVIDIA GeForce GTX 1080 Ti", "Turing": "Tesla T4", "Blackwell": "NVIDIA GeForce RTX 5090"}
    for arch, name in names.items():
        rec = gpu.recommend([arch])
        for version in ("510.108.03", "580.95.05", "590.44.01"):
            for mtype in ("auto", "open", "proprietary"):
                pillar = gpu.driver_problems("n1", [name], version, mtype)
                branch = gpu.branch_of(version)
                refusals = state._branch_problems(branch, rec, f"driver {version}")
                # the package method: the branch decides (no installer option to check)
                refusals += state._module_type(mtype, str(branch), rec, "package")[1]
                assert bool(pillar) == bool(refusals), (arch, version, mtype, pillar, refusals)
