"""The sandbox image's size and build time: the Dockerfile of a git ref (main) vs this tree.

Prints, side by side, for each variant: `docker image inspect` size and the wall time of a
build without cache (every layer above the base rebuilt), all FROM the same local
debian:bookworm-slim. Also the slim image with Cockpit (COCKPIT=1), built with the cache of
the slim one, which is what switching cockpit_enabled costs.
The images get bench tags (occ-bench-image:…) and are removed afterwards unless --keep.
Asserts nothing. Usage: python bench/image_size.py [--old-ref main] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from opencode_cloud.config.model import Config  # noqa: E402
from opencode_cloud.image.build import BASE_IMAGE, build_inputs  # noqa: E402
from opencode_cloud.image.custom import context_tar as context_of  # noqa: E402

CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # this machine's TLS-inspecting proxy
TAG = "occ-bench-image"


def git_show(ref: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:{path}"], capture_output=True, check=True
    ).stdout


def build(
    client, tag: str, context: bytes, args: dict[str, str], nocache: bool, stages: list[str]
) -> tuple[float, int, int]:
    """(seconds, steps run, steps in all). Appends earlier stages' image ids to ``stages``."""
    started = time.perf_counter()
    stream = client.api.build(
        fileobj=io.BytesIO(context), custom_context=True, tag=tag, buildargs=args,
        rm=True, forcerm=True, decode=True, pull=False, nocache=nocache,
    )
    tail: list[str] = []
    last_id = None
    steps = ran = 0
    for chunk in stream:
        if "error" in chunk:
            raise SystemExit(f"building {tag} failed: {chunk['error']}\n" + "\n".join(tail))
        for line in chunk.get("stream", "").splitlines():
            if line.startswith(" ---> ") and not line.startswith(" ---> Running"):
                last_id = line.split()[-1]
            elif line.startswith("Step ") and " : FROM " in line and last_id:
                stages.append(last_id)  # the classic builder keeps a stage as <none> image
            if line.startswith("Step "):
                steps += 1
            elif line.startswith(" ---> Running in "):
                ran += 1
            tail = (tail + [line])[-15:]
    return time.perf_counter() - started, ran, steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-ref", default="main", help="git ref of the old Dockerfile")
    parser.add_argument("--keep", action="store_true", help="keep the bench images")
    options = parser.parse_args()

    import docker

    client = docker.from_env()
    config = Config(extra_ca_certs=str(CA_BUNDLE) if CA_BUNDLE.exists() else None)
    new = build_inputs(config)
    old_files = {
        "Dockerfile": git_show(options.old_ref, "src/opencode_cloud/image/Dockerfile"),
        "entrypoint.sh": git_show(options.old_ref, "src/opencode_cloud/image/entrypoint.sh"),
        "extra-ca.crt": new.files["extra-ca.crt"],
    }
    old_args = {"OPENCODE_VERSION": config.opencode_version, "BASE_IMAGE": BASE_IMAGE}
    cockpit = build_inputs(Config(extra_ca_certs=config.extra_ca_certs, cockpit_enabled=True))

    variants = [
        (f"old ({options.old_ref})", f"{TAG}:old", context_of(old_files), old_args, True),
        ("new (slim)", f"{TAG}:new", new.context_tar(), new.build_args, True),
        ("new + Cockpit (cache of slim)", f"{TAG}:new-cockpit", cockpit.context_tar(),
         cockpit.build_args, False),
    ]
    base = client.images.get(BASE_IMAGE).attrs["Size"]
    load = os.getloadavg()[0]
    print(f"base {BASE_IMAGE}: {base / 1e6:.0f} MB; opencode {config.opencode_version}; "
          f"load average {load:.1f} on {os.cpu_count()} cores (builds are CPU-bound)")
    print(f"{'image':<32} {'size':>9} {'build':>9}")
    stages: list[str] = []
    try:
        for name, tag, context, args, nocache in variants:
            seconds, ran, steps = build(client, tag, context, args, nocache, stages)
            size = client.images.get(tag).attrs["Size"]
            how = "no cache" if nocache else "cache"
            print(f"{name:<32} {size / 1e6:6.0f} MB {seconds:7.0f} s  ({how}: ran {ran} of "
                  f"{steps} steps)", flush=True)
    finally:
        if not options.keep:
            for ref in [tag for _, tag, *_ in variants] + stages:
                # gone already, or still the parent of another image
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(ref)


if __name__ == "__main__":
    main()
