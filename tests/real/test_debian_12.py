"""The unmodified state tree on a real Debian 12 (bookworm) node: the tests
of tests/real/layers.py (see there what is real and what is stubbed)."""

import pytest

from tests.real.layers import test_layers_predict_apply_converge_clean, test_repository_forms_on_real_apt  # noqa: F401

pytestmark = pytest.mark.real
SUITE = "bookworm"
