"""Load, validate and change config.json safely.

Every load validates; a bad file is an error naming the file, the key and the fix,
never a silent fallback to defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from opencode_cloud.config import paths
from opencode_cloud.config.jsonc import parse_jsonc
from opencode_cloud.config.masking import mask_setting
from opencode_cloud.config.model import FIELDS, Config
from opencode_cloud.errors import ConfigError

# msgspec's messages end with the path of the bad value: "... - at `$.opencode_web_port`".
_AT_PATH = re.compile(r" - at `\$\.?([A-Za-z0-9_]*)[^`]*`$")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")


def describe_validation_error(
    exc: msgspec.ValidationError, source: str, data: Any = None
) -> ConfigError:
    """Turn msgspec's ValidationError into one readable ConfigError."""
    text = str(exc)
    unknown = _UNKNOWN.search(text)
    if unknown:
        return ConfigError(
            f"{source}: unknown key '{unknown.group(1)}'",
            hint=f"Remove it or fix its spelling. Known keys: {', '.join(FIELDS)}.",
        )
    at = _AT_PATH.search(text)
    if at and at.group(1):
        key = at.group(1)
        got = mask_setting(key, data.get(key)) if isinstance(data, dict) else None
        detail = text[: at.start()]
        if key.endswith("_port") and isinstance(got, int):
            detail = "must be a port number from 1 to 65535"
        elif key == "image_source":
            detail = "must be 'build', 'prebuilt' or 'ship'"
        message = f"key '{key}' is invalid: {detail} (got {got!r})"
    else:
        message = text
        key = re.search(r"key '([^']+)'", text)
        key = key.group(1) if key else "KEY"
    return ConfigError(
        f"{source}: {message}", hint=f"Set a valid value with: occ config set {key} VALUE"
    )


def parse_config(text: str, source: Path) -> Config:
    data = parse_jsonc(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a JSON object", hint="Fix the file by hand.")
    return validate(data, str(source))


def validate(data: dict[str, Any], source: str) -> Config:
    try:
        return msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise describe_validation_error(exc, source, data) from None
    except UnicodeEncodeError:  # msgspec cannot read a string with an unpaired surrogate
        raise ConfigError(f"{source}: a value holds an unpaired surrogate (\\ud800-\\udfff)",
                          hint="Values must be valid UTF-8 text.") from None


def render(config: Config) -> str:
    return json.dumps(config.to_dict(), indent=2) + "\n"


def load_config(path: Path | None = None) -> Config:
    """The validated config; defaults when the file does not exist yet."""
    path = path or paths.config_file()
    from opencode_cloud.storage import safe_file

    text = safe_file.read_text(path)
    return Config() if text is None else parse_config(text, path)


def change_config(change: Callable[[Config], Config], path: Path | None = None) -> Config:
    """Apply ``change(config) -> Config`` under the lock; the file is written only if valid."""
    from opencode_cloud.storage import safe_file

    path = path or paths.config_file()
    return safe_file.update_document(path, lambda text: parse_config(text, path), Config,
                                     render, change)


def require_key(key: str) -> None:
    if key not in FIELDS:
        raise ConfigError(f"unknown config key '{key}'", hint=f"Known keys: {', '.join(FIELDS)}.")


def coerce_value(key: str, raw: str) -> Any:
    """Turn the string typed on the command line into the JSON value the key expects."""
    require_key(key)
    default = getattr(Config(), key)
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in {"true", "yes", "on", "1"}:
            return True
        if lowered in {"false", "no", "off", "0"}:
            return False
        raise ConfigError(f"config key '{key}' takes true or false (got {raw!r})")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"config key '{key}' takes a whole number (got {raw!r})") from None
    if isinstance(default, list):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, list):
            raise ConfigError(
                f"config key '{key}' takes a JSON list such as '[\"A=1\"]'",
                hint="For container_env, 'occ config env set KEY=VALUE' is easier.",
            )
        return value
    if raw == "" and key in OPTIONAL_KEYS:
        return None  # an empty string clears an optional setting
    return raw


OPTIONAL_KEYS = {"extra_ca_certs", "memory_limit", "image_dockerfile"}


def check_overrides(settings: dict[str, Any]) -> None:
    """Raise ValueError unless ``settings`` are valid values of config.json keys."""
    for key in settings:
        if key not in FIELDS:
            raise ValueError(f"settings: unknown config key '{key}' (known: {', '.join(FIELDS)})")
    try:
        msgspec.convert({**Config().to_dict(), **settings}, Config)
    except msgspec.ValidationError as exc:
        raise ValueError(f"settings: {describe_validation_error(exc, 'value', settings).message}"
                         .replace("value: ", "")) from None


def with_overrides(config: Config, settings: dict[str, Any], source: str) -> Config:
    """``config`` with a host's own settings on top (hosts.json ``settings``)."""
    return validate({**config.to_dict(), **settings}, source) if settings else config


def with_value(config: Config, key: str, value: Any) -> Config:
    """A copy of ``config`` with ``key`` set, validated like a file load."""
    data = config.to_dict()
    data[key] = value
    return validate(data, str(paths.config_file()))
