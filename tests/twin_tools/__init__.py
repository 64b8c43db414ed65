"""Tests of the twin's emulated OS tools (temp roots, no namespaces)."""
