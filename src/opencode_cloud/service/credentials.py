"""The web UI's login: generated once per target, kept on the target itself.

The first login is kept as labels of the data volume. Docker labels cannot change, so a
rotated login lives on a small volume of its own (``<instance>-auth-<generation>``, never
mounted, labels only); the newest generation wins. Rotating creates the new one first and
removes the older ones only after the container runs with the new password, so an
interrupted rotation leaves one complete login, never none.
"""

from __future__ import annotations

from dataclasses import dataclass

from opencode_cloud.engine.labels import label
from opencode_cloud.errors import OccError
from opencode_cloud.service.names import ServiceNames

DEFAULT_USERNAME = "opencode"
USERNAME_LABEL = label("auth.username")
PASSWORD_LABEL = label("auth.password")
AUTH_OF_LABEL = label("auth-of")  # on rotated-login volumes: the instance they belong to
GENERATION_LABEL = label("auth.generation")


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


def rotated_volumes(client, names: ServiceNames) -> list:
    """The volumes holding rotated logins of this instance, newest first."""
    volumes = client.volumes.list(filters={"label": f"{AUTH_OF_LABEL}={names.instance}"})
    return sorted(volumes, key=lambda v: int((v.attrs.get("Labels") or {})
                                             .get(GENERATION_LABEL, "0") or 0), reverse=True)


def read_credentials(client, names: ServiceNames) -> Credentials | None:
    from docker.errors import NotFound

    for volume in rotated_volumes(client, names):
        labels = volume.attrs.get("Labels") or {}
        if USERNAME_LABEL in labels and PASSWORD_LABEL in labels:
            return Credentials(labels[USERNAME_LABEL], labels[PASSWORD_LABEL])

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


def store_rotated(client, names: ServiceNames, creds: Credentials) -> str:
    """Keep ``creds`` as the newest login; returns the new volume's name."""
    import time

    generation = str(time.time_ns())
    name = f"{names.instance}-auth-{generation}"
    client.volumes.create(name=name, labels={
        label("instance"): names.instance, AUTH_OF_LABEL: names.instance,
        GENERATION_LABEL: generation, USERNAME_LABEL: creds.username,
        PASSWORD_LABEL: creds.password})
    return name


def drop_older_logins(client, names: ServiceNames, keep: str) -> None:
    for volume in rotated_volumes(client, names):
        if volume.name != keep:
            volume.remove()


def login_digest(creds: Credentials) -> str:
    """A short digest of the login for the container's settings summary: a new password
    recreates the container, and the label shows nothing of the password."""
    import hashlib

    return hashlib.sha256(f"{creds.username}:{creds.password}".encode()).hexdigest()[:16]
