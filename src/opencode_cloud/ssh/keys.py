"""Facts about private key files that ssh's own messages do not tell."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

_OPENSSH_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_MAGIC = b"openssh-key-v1\0"


def key_is_encrypted(text: str) -> bool:
    """Does this private key (OpenSSH or PEM format) need a passphrase?"""
    if "ENCRYPTED" in text:  # PEM: "Proc-Type: 4,ENCRYPTED" or "BEGIN ENCRYPTED PRIVATE KEY"
        return True
    if _OPENSSH_BEGIN not in text:
        return False
    body = text.split(_OPENSSH_BEGIN, 1)[1].split("-----END", 1)[0]
    try:
        blob = base64.b64decode("".join(body.split()), validate=True)
    except ValueError:
        return False
    if not blob.startswith(_OPENSSH_MAGIC) or len(blob) < len(_OPENSSH_MAGIC) + 4:
        return False
    (length,) = struct.unpack(">I", blob[len(_OPENSSH_MAGIC):len(_OPENSSH_MAGIC) + 4])
    start = len(_OPENSSH_MAGIC) + 4
    return blob[start:start + length] != b"none"


def key_file_is_encrypted(path: str | Path) -> bool:
    try:
        return key_is_encrypted(Path(path).read_text(encoding="ascii", errors="replace"))
    except OSError:
        return False
