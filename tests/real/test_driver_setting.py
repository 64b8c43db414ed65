"""K8SNVIDIA_REAL_DRIVER: which Debian releases of the real-node tier build
the driver with real DKMS (tests/real/layers.py). No node is booted here."""

import pytest

from tests.real import layers


@pytest.mark.parametrize(("setting", "suites"), [
    (None, set()),
    ("1", {"bookworm", "trixie"}),
    ("all", {"bookworm", "trixie"}),
    ("0", set()),
    ("none", set()),
    ("12", {"bookworm"}),
    ("bookworm, 13", {"bookworm", "trixie"}),
    ("Debian-13", {"trixie"}),
])
def test_driver_setting(monkeypatch, setting, suites):
    if setting is None:
        monkeypatch.delenv("K8SNVIDIA_REAL_DRIVER", raising=False)
    else:
        monkeypatch.setenv("K8SNVIDIA_REAL_DRIVER", setting)
    assert layers.driver_suites() == suites
    assert ("nvidia.driver" in layers.layers("trixie")) is ("trixie" in suites)
    assert ("nvidia.driver.clean" in layers.clean_layers("bookworm")) is ("bookworm" in suites)


def test_driver_setting_names_the_unknown_value(monkeypatch):
    monkeypatch.setenv("K8SNVIDIA_REAL_DRIVER", "sid")
    with pytest.raises(ValueError, match=r"'sid' is not one of \['bookworm', 'trixie'\]"):
        layers.driver_suites()
