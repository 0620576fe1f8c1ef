"""Which settings are secret, and how a secret is shown: the one place for both.

Every command that prints config values (``config show``/``get``/``env list``/``set``,
``host show``/``list``, and error messages quoting a bad value) masks through here, so a
future secret key is masked everywhere by adding it to :data:`SECRET_KEYS`.

A secret is shown as a short prefix and ``…(hidden)``: ``ANTHROPIC_API_KEY=sk-…(hidden)``.
The prefix is at most 3 characters and never more than an eighth of the value (none below
8 characters), so it tells keys apart without giving much away; the length is not shown.

It lives in ``config`` (not ``output``) because config's own error messages quote values
and may not import the layers above it. Pure: no imports beyond ``re``.
"""

from __future__ import annotations

import re
from typing import Any

HIDDEN = "…(hidden)"
# config.json keys whose values are secret. container_env holds API keys and the like;
# every entry's value is masked, whatever its name.
SECRET_KEYS = frozenset({"container_env"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def mask_value(value: str) -> str:
    """``sk-ant-api03-…`` -> ``sk-…(hidden)``; short values show nothing of themselves."""
    shown = min(3, len(value) // 8)
    return value[:shown] + HIDDEN


def mask_env_entry(entry: str) -> str:
    """``KEY=value`` -> ``KEY=<masked value>``. Something that is not ``NAME=…`` (a value
    typed without its name, say) is masked whole."""
    name, sep, value = entry.partition("=")
    if sep and _ENV_NAME.match(name):
        return f"{name}={mask_value(value)}"
    return mask_value(entry)


def _mask_any(value: Any) -> Any:
    """A secret key's value of any shape (valid, or a wrong type quoted by an error)."""
    if isinstance(value, str):
        return mask_env_entry(value)
    if isinstance(value, list | tuple):
        return [_mask_any(item) for item in value]
    if isinstance(value, dict):
        return {key: _mask_any(item) for key, item in value.items()}
    if value is None or isinstance(value, bool):
        return value
    return mask_value(str(value))


def is_secret(key: str) -> bool:
    return key in SECRET_KEYS


def mask_setting(key: str, value: Any) -> Any:
    """The value of config key ``key`` as it may be shown."""
    return _mask_any(value) if is_secret(key) else value


def mask_settings(settings: Any) -> Any:
    """A mapping of config keys (config.json, a host's ``settings``) as it may be shown.
    Anything else (a hand-edited ``settings`` of the wrong type) is masked whole."""
    if not isinstance(settings, dict):
        return _mask_any(settings)
    return {key: mask_setting(key, value) for key, value in settings.items()}
