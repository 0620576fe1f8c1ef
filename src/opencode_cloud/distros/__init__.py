"""Linux distributions: what /etc/os-release says, and how Docker is installed and started
on each family (pure builders, no I/O)."""
