"""Real tools judge the twin: the twin's emulated apt/dpkg/dnf/rpm/systemctl/
ufw/sysctl/dkms/update-initramfs/containerd and its copy of the device
plugin's config loading, against the real ones (the `real` fixture and the
helpers of tests/judges). Marker ``judge``, as the product's judges."""

from tests.judges.conftest import real  # noqa: F401  (the real binaries, fetched once)
