"""Make sure the target Engine has the sandbox image for the current settings.

``image_source: build`` builds from the Dockerfile shipped in this package on the target
Engine; ``prebuilt`` pulls ``image`` from its registry; ``ship`` makes it on this machine and
sends it over the host's SSH connection (image/ship.py). Built images carry labels saying
what built them, so a rebuild happens only when an input changes.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from importlib import resources

from opencode_cloud import __version__
from opencode_cloud.config.model import Config
from opencode_cloud.engine.labels import label
from opencode_cloud.errors import OccError
from opencode_cloud.image.custom import (
    BASE_ARG,
    CustomInputs,
    DockerfileError,
    context_tar,
    read_custom,
)
from opencode_cloud.image.refs import image_ref, service_ref
from opencode_cloud.image.trust import ExtraCA, certificate_hint, resolve_extra_ca
from opencode_cloud.report import Reporter

INPUTS_LABEL = label("inputs")
OCC_VERSION_LABEL = label("occ-version")
OPENCODE_VERSION_LABEL = label("opencode-version")
BASE_IMAGE = "debian:bookworm-slim"


class ImageError(OccError):
    """The image could not be built or pulled."""


@dataclass(frozen=True)
class BuildInputs:
    """Everything a build depends on. Its digest decides whether to rebuild."""

    files: dict[str, bytes]
    build_args: dict[str, str]
    # Where extra-ca.crt came from (for the hint when a build fails on a certificate);
    # not part of the digest, the file's bytes are.
    extra_ca: ExtraCA = ExtraCA(b"", "none")

    @property
    def digest(self) -> str:
        sha = hashlib.sha256()
        for name in sorted(self.files):
            sha.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        for key in sorted(self.build_args):
            sha.update(f"{key}={self.build_args[key]}\0".encode())
        return sha.hexdigest()[:32]

    def context_tar(self) -> bytes:
        return context_tar(self.files)


def build_inputs(config: Config) -> BuildInputs:
    package = resources.files("opencode_cloud.image")
    try:
        extra_ca = resolve_extra_ca(config.extra_ca_certs)
    except OccError as exc:
        raise ImageError(exc.message, hint=exc.hint) from None
    files = {
        "Dockerfile": (package / "Dockerfile").read_bytes(),
        "entrypoint.sh": (package / "entrypoint.sh").read_bytes(),
        "extra-ca.crt": extra_ca.data,
    }
    build_args = {
        "OPENCODE_VERSION": config.opencode_version,
        "BASE_IMAGE": BASE_IMAGE,
        # Cockpit is in the image only when it is on, so switching it changes the digest
        # and the next start rebuilds (from cache, apart from Cockpit's own layer).
        "COCKPIT": "1" if config.cockpit_enabled else "0",
    }
    if config.image_packages:  # absent when empty: an image without extras keeps its digest
        build_args["EXTRA_PACKAGES"] = " ".join(config.image_packages)
    return BuildInputs(files, build_args, extra_ca)


def find_image(client, ref: str):
    from docker.errors import ImageNotFound

    try:
        return client.images.get(ref)
    except ImageNotFound:
        return None


def ensure_image(client, config: Config, reporter: Reporter, *, refresh: bool = False,
                 ship=None, where: str = "the host", origin=None):
    """The image object the service runs for the current settings, building or pulling
    what is missing: occ's image, and on top of it the image of ``image_dockerfile``.

    ``refresh`` pulls a prebuilt image even when one is present (update). ``ship`` (an
    image.ship.ShipSource) is where ``image_source: ship`` takes the image from; None when
    the target is this machine itself. ``where`` names the target in messages; ``origin``
    is its DockerEndpoint (ship sends an image a host made on to others of its kind).
    """
    custom = None
    if config.image_dockerfile:  # checked before anything is built or pulled
        try:
            custom = read_custom(config.image_dockerfile, config.image)
        except DockerfileError as exc:
            raise ImageError(exc.message, hint=exc.hint) from None
    base = ensure_base_image(client, config, reporter, refresh=refresh, ship=ship, where=where,
                             origin=origin)
    if custom is None:
        return base
    return ensure_custom_image(client, config, custom, base, reporter)


def ensure_custom_image(client, config: Config, custom: CustomInputs, base, reporter: Reporter):
    ref = service_ref(config)
    digest = custom.digest(base.id)
    existing = find_image(client, ref)
    if existing is not None and (existing.labels or {}).get(INPUTS_LABEL) == digest:
        return existing
    labels = {INPUTS_LABEL: digest, OCC_VERSION_LABEL: __version__,
              OPENCODE_VERSION_LABEL: config.opencode_version}
    reporter.step(f"Building image {ref} from {custom.dockerfile}")
    # The image below already trusts what extra_ca_certs gave it (update-ca-certificates).
    trusted = ExtraCA(b"", f"occ's image (extra_ca_certs {config.extra_ca_certs})")
    run_build(client, ref, custom.context_tar(), {BASE_ARG: image_ref(config)}, labels,
              reporter, lambda tail, error: certificate_hint([*tail, error], trusted)
              + missing_packages_hint(tail, []))
    reporter.success(f"Built image {ref}.")
    return client.images.get(ref)


def ensure_base_image(client, config: Config, reporter: Reporter, *, refresh: bool = False,
                      ship=None, where: str = "the host", origin=None):
    """occ's own sandbox image, ``image_ref(config)``."""
    if config.image_source == "ship":
        from opencode_cloud.image.ship import ensure_shipped

        return ensure_shipped(client, config, reporter, ship, where=where, refresh=refresh,
                              origin=origin)
    ref = image_ref(config)
    if config.image_source == "prebuilt":
        existing = find_image(client, ref)
        if existing is not None and not refresh:
            return existing
        return pull_image(client, ref, reporter)
    inputs = build_inputs(config)
    existing = find_image(client, ref)
    if existing is not None and (existing.labels or {}).get(INPUTS_LABEL) == inputs.digest:
        return existing
    return build_image(client, ref, inputs, config, reporter)


def build_image(client, ref: str, inputs: BuildInputs, config: Config, reporter: Reporter):
    labels = {
        INPUTS_LABEL: inputs.digest,
        OCC_VERSION_LABEL: __version__,
        OPENCODE_VERSION_LABEL: config.opencode_version,
    }
    reporter.step(f"Building image {ref} (opencode {config.opencode_version}); this takes a "
                  "minute")
    run_build(client, ref, inputs.context_tar(), inputs.build_args, labels, reporter,
              lambda tail, error: _base_image_hint(error)
              + certificate_hint([*tail, error], inputs.extra_ca)
              + missing_packages_hint(tail, config.image_packages))
    reporter.success(f"Built image {ref}.")
    return client.images.get(ref)


def run_build(client, ref: str, context: bytes, build_args: dict[str, str],
              labels: dict[str, str], reporter: Reporter, hints) -> None:
    """One build on the Engine, its steps reported; a failure shows the last lines and
    ``hints(last_lines, error)``."""
    from collections import deque

    from docker.errors import APIError

    tail: deque[str] = deque(maxlen=25)  # the last lines, for the error message
    try:
        stream = client.api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            tag=ref,
            buildargs=build_args,
            labels=labels,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
        )
        for chunk in stream:
            if "error" in chunk:
                raise ImageError(
                    f"the image build failed: {chunk['error'].strip()}",
                    hint="Last lines of the build:\n" + "\n".join(tail)
                    + hints(list(tail), chunk["error"]),
                )
            for line in chunk.get("stream", "").splitlines():
                if not line.strip():
                    continue
                tail.append(line)
                if line.startswith("Step "):
                    reporter.activity(line)
                else:
                    reporter.detail(line)
    except APIError as exc:
        raise ImageError(
            f"the image build failed: {exc.explanation or exc}",
            hint=_base_image_hint(str(exc)) or None,
        ) from None


def missing_packages_hint(build_lines, wanted: list[str]) -> str:
    """Names the image_packages entries apt could not find ("" if none failed)."""
    import re

    missing = [name for line in build_lines
               for name in re.findall(r"Unable to locate package (\S+)", line)]
    missing = [name for name in dict.fromkeys(missing) if name in wanted] or missing
    if not missing:
        return ""
    return (f"\nDebian has no package {', '.join(repr(m) for m in missing)} (image_packages). "
            "Check the name on https://packages.debian.org/bookworm and change the list: "
            "occ config set image_packages '[...]'")


def _base_image_hint(error: str) -> str:
    if BASE_IMAGE.split(":")[0] in error and ("pull" in error or "not found" in error):
        return (
            f"\nThe base image {BASE_IMAGE} is missing on that Engine and could not be "
            "pulled: load it there (docker pull, or docker import of a debootstrap tarball)."
        )
    return ""


def pull_image(client, ref: str, reporter: Reporter):
    from docker.errors import APIError

    reporter.step(f"Pulling {ref}")
    layers: dict[str, tuple[int, int]] = {}  # layer id -> (bytes done, bytes in all)
    try:
        for event in client.api.pull(ref, stream=True, decode=True):
            if "error" in event:
                raise ImageError(f"pulling {ref} failed: {event['error']}")
            detail = event.get("progressDetail") or {}
            if event.get("status") == "Downloading" and detail.get("total"):
                layers[event.get("id", "?")] = (detail["current"], detail["total"])
                reporter.progress(f"Pulling {ref}", sum(d for d, _ in layers.values()),
                                  sum(t for _, t in layers.values()))
    except APIError as exc:
        raise ImageError(
            f"pulling {ref} failed: {exc.explanation or exc}",
            hint="Check the image name (occ config get image), the "
            "registry's address and that you are logged in to it.",
        ) from None
    reporter.success(f"Pulled {ref}.")
    return client.images.get(ref)
