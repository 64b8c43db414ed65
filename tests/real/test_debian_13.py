"""The unmodified state tree on a real Debian 13 (trixie) node: the tests
of tests/real/layers.py (see there what is real and what is stubbed).
Part of the default suite as Debian 12 is, its rootfs built once per
machine; K8SNVIDIA_REAL_QUICK=1 leaves it out for a quicker local run."""

import os

import pytest

from tests.real.layers import test_layers_predict_apply_converge_clean, test_repository_forms_on_real_apt  # noqa: F401

pytestmark = [pytest.mark.real, pytest.mark.skipif(os.environ.get("K8SNVIDIA_REAL_QUICK") == "1",
                                                   reason="K8SNVIDIA_REAL_QUICK=1: Debian 13 (trixie) left out")]
SUITE = "trixie"
