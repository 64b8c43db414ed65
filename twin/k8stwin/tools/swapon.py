"""Emulated swapon (see swapoff.py)."""

from .swapoff import swap_main


def main(argv):
    return swap_main(argv, on=True)
