"""The web UI's login: generated once per target, kept on the target itself."""

from __future__ import annotations

from dataclasses import dataclass

from opencode_cloud.engine.labels import label
from opencode_cloud.errors import OccError
from opencode_cloud.service.names import ServiceNames

DEFAULT_USERNAME = "opencode"
USERNAME_LABEL = label("auth.username")
PASSWORD_LABEL = label("auth.password")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def generate_password() -> str:
    # 24 URL-safe characters from the OS's CSPRNG (~143 bits); no ':' so basic auth and
    # chpasswd take it as is.
    import secrets

    return secrets.token_urlsafe(18)


def ensure_volumes(client, names: ServiceNames) -> Credentials:
    """Create any missing volume; the data volume carries the credentials as labels."""
    from docker.errors import NotFound

    creds = read_credentials(client, names)
    if creds is None:
        creds = Credentials(DEFAULT_USERNAME, generate_password())
    for volume in names.volumes:
        try:
            client.volumes.get(volume)
        except NotFound:
            labels = {label("instance"): names.instance}
            if volume == names.credentials_volume:
                labels |= {USERNAME_LABEL: creds.username, PASSWORD_LABEL: creds.password}
            client.volumes.create(name=volume, labels=labels)
    return creds


def read_credentials(client, names: ServiceNames) -> Credentials | None:
    from docker.errors import NotFound

    try:
        labels = client.volumes.get(names.credentials_volume).attrs.get("Labels") or {}
    except NotFound:
        return None
    if USERNAME_LABEL not in labels or PASSWORD_LABEL not in labels:
        raise OccError(
            f"volume {names.credentials_volume} exists but holds no occ credentials",
            hint="It was not made by occ. Remove or rename it, or set OCC_INSTANCE "
            "to use other names.",
        )
    return Credentials(labels[USERNAME_LABEL], labels[PASSWORD_LABEL])
