"""Which extra certificate authorities the image build trusts (the ``extra_ca_certs`` key).

Behind a TLS-inspecting proxy npm's downloads fail unless the image trusts the proxy's CA.
``auto`` (the default) takes the trust store of the machine occ runs on, so the image
trusts what this machine trusts: ``SSL_CERT_FILE`` when it names a PEM bundle, else the
distribution's bundle. ``none`` (or an empty value) keeps the image's own store only; any
other value is the path of a PEM bundle, which must be readable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from opencode_cloud.errors import OccError

AUTO = "auto"
NONE = "none"
PEM_MARK = b"-----BEGIN CERTIFICATE-----"
# Where distributions keep the system bundle (Debian/Ubuntu, Fedora/RHEL, openSUSE,
# Alpine/macOS), in the order Go's crypto/x509 looks for them.
DISTRO_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


@dataclass(frozen=True)
class ExtraCA:
    """The bundle's bytes (empty: none) and where they came from, for messages."""

    data: bytes
    source: str  # "SSL_CERT_FILE=/path", "/path", or "none"


def resolve_extra_ca(setting: str | None, environ: Mapping[str, str] | None = None,
                     bundles: Sequence[str] = DISTRO_BUNDLES) -> ExtraCA:
    if setting is None or setting in ("", NONE):
        return ExtraCA(b"", NONE)
    if setting == AUTO:
        return _automatic(os.environ if environ is None else environ, bundles)
    return _from_path(Path(setting).expanduser())


def _automatic(environ: Mapping[str, str], bundles: Sequence[str]) -> ExtraCA:
    # auto never fails: a missing or odd file only means "not this one".
    candidates = [(f"SSL_CERT_FILE={environ['SSL_CERT_FILE']}", environ["SSL_CERT_FILE"])
                  ] if environ.get("SSL_CERT_FILE") else []
    candidates += [(path, path) for path in bundles]
    for source, path in candidates:
        data = _read_pem(Path(path).expanduser())
        if data:
            return ExtraCA(data, source)
    return ExtraCA(b"", NONE)


def _read_pem(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError:
        return b""
    return data if PEM_MARK in data else b""


def _from_path(path: Path) -> ExtraCA:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OccError(
            f"extra_ca_certs: cannot read {path}: {exc.strerror}",
            hint="Point it at a PEM bundle: occ config set extra_ca_certs PATH, or let occ "
            "take this machine's trust store: occ config set extra_ca_certs auto",
        ) from None
    if PEM_MARK not in data:
        raise OccError(
            f"extra_ca_certs: {path} holds no PEM certificate",
            hint="Give a file with -----BEGIN CERTIFICATE----- blocks.",
        )
    return ExtraCA(data, str(path))


# What npm, curl, git and OpenSSL print when a proxy's certificate is not trusted.
CERTIFICATE_ERRORS = (
    "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_UNTRUSTED", "self-signed certificate",
    "self signed certificate", "unable to get local issuer certificate",
    "certificate verify failed", "server certificate verification failed",
)


def certificate_hint(build_lines: Sequence[str], used: ExtraCA) -> str:
    """A hint naming the command that fixes a build failing on an untrusted certificate,
    or "" when the build's last lines show no certificate error."""
    text = "\n".join(build_lines).lower()
    if not any(mark.lower() in text for mark in CERTIFICATE_ERRORS):
        return ""
    trusted = ("no extra certificate authority" if used.source == NONE
               else f"the certificates of {used.source}")
    return (
        f"\nThe build does not trust a certificate on its way out (it trusted {trusted}). "
        "Behind a TLS-inspecting proxy, give occ the bundle that holds the proxy's CA: "
        "occ config set extra_ca_certs /path/to/proxy-ca.pem"
    )
