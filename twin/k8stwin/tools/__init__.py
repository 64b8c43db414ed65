"""Emulated OS tools of a twin node: one module per tool, each with main(argv) -> int."""
