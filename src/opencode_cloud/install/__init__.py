"""Installing Docker on a remote host that lacks it: detection and per-distribution plans."""
