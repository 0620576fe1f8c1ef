"""extra_ca_certs: auto takes this machine's trust store, none keeps the image's own, a path
must be a readable PEM bundle; a build failing on a certificate names the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencode_cloud.config.model import Config
from opencode_cloud.errors import OccError
from opencode_cloud.image.build import build_inputs
from opencode_cloud.image.trust import ExtraCA, certificate_hint, resolve_extra_ca

pytestmark = pytest.mark.unit

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def bundle(tmp_path: Path, name: str, data: bytes = PEM) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_auto_is_the_default_and_prefers_ssl_cert_file(tmp_path: Path) -> None:
    assert Config().extra_ca_certs == "auto"
    mine = bundle(tmp_path, "mine.pem", PEM + b"# mine\n")
    distro = bundle(tmp_path, "distro.crt")
    found = resolve_extra_ca("auto", {"SSL_CERT_FILE": mine}, [distro])
    assert found == ExtraCA(PEM + b"# mine\n", f"SSL_CERT_FILE={mine}")


def test_auto_falls_back_to_the_first_distribution_bundle_that_holds_pem(tmp_path) -> None:
    not_pem = bundle(tmp_path, "empty.crt", b"")
    distro = bundle(tmp_path, "distro.crt")
    found = resolve_extra_ca("auto", {"SSL_CERT_FILE": str(tmp_path / "gone.pem")},
                             [str(tmp_path / "missing.crt"), not_pem, distro])
    assert found == ExtraCA(PEM, distro)


def test_auto_without_any_bundle_is_none_and_never_fails(tmp_path: Path) -> None:
    assert resolve_extra_ca("auto", {}, [str(tmp_path / "missing.crt")]) == ExtraCA(b"", "none")


@pytest.mark.parametrize("setting", [None, "", "none"])
def test_none_keeps_the_image_clean(setting, tmp_path: Path) -> None:
    distro = bundle(tmp_path, "distro.crt")
    assert resolve_extra_ca(setting, {"SSL_CERT_FILE": distro}, [distro]).data == b""


def test_a_path_must_be_readable_pem(tmp_path: Path) -> None:
    good = bundle(tmp_path, "proxy.pem")
    assert resolve_extra_ca(good, {}).data == PEM
    with pytest.raises(OccError, match="cannot read"):
        resolve_extra_ca(str(tmp_path / "missing.pem"), {})
    with pytest.raises(OccError, match="holds no PEM certificate"):
        resolve_extra_ca(bundle(tmp_path, "junk.pem", b"junk"), {})


def test_the_bundle_is_a_build_input(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", bundle(tmp_path, "one.pem"))
    one = build_inputs(Config())
    monkeypatch.setenv("SSL_CERT_FILE", bundle(tmp_path, "two.pem", PEM + PEM))
    two = build_inputs(Config())
    assert one.files["extra-ca.crt"] == PEM and two.files["extra-ca.crt"] == PEM + PEM
    assert one.digest != two.digest  # another trust store: the next start rebuilds
    assert build_inputs(Config(extra_ca_certs="none")).files["extra-ca.crt"] == b""


@pytest.mark.parametrize("line", [
    "npm ERR! code SELF_SIGNED_CERT_IN_CHAIN",
    "npm error request to https://registry.npmjs.org/opencode-ai failed, reason: "
    "unable to get local issuer certificate",
    "curl: (60) SSL certificate problem: self-signed certificate in certificate chain",
    "fatal: unable to access 'https://x/': server certificate verification failed.",
])
def test_a_certificate_failure_names_the_command_that_fixes_it(line: str) -> None:
    hint = certificate_hint(["Step 5/20 : RUN npm install", line],
                            ExtraCA(PEM, "SSL_CERT_FILE=/etc/ssl/x.pem"))
    assert "occ config set extra_ca_certs /path/to/proxy-ca.pem" in hint
    assert "SSL_CERT_FILE=/etc/ssl/x.pem" in hint


def test_other_failures_get_no_certificate_hint() -> None:
    assert certificate_hint(["npm ERR! code E404", "404 Not Found - opencode-ai@9.9.9"],
                            ExtraCA(b"", "none")) == ""
