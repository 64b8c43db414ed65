"""Fixtures shared by the unit tests of a module and of its states."""

from tests.fakes.boot_machine import el7, el9, reboot_dir, ubuntu  # noqa: F401  (the boot-kernel tests' machines)
