"""Load, validate and change config.json safely.

Every load validates; a bad file is an error naming the file, the key and the fix,
never a silent fallback to defaults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opencode_cloud.config import paths
from opencode_cloud.config.jsonc import parse_jsonc
from opencode_cloud.config.model import Config
from opencode_cloud.errors import ConfigError
from opencode_cloud.storage import safe_file


def describe_validation_error(exc: Any, source: str) -> ConfigError:
    """Turn pydantic's ValidationError into one readable ConfigError."""
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        known = ", ".join(Config.model_fields)
        return ConfigError(
            f"{source}: unknown key '{key}'",
            hint=f"Remove it or fix its spelling. Known keys: {known}.",
        )
    message = first["msg"].removeprefix("Value error, ")
    return ConfigError(
        f"{source}: key '{key}' is invalid: {message} (got {first.get('input')!r})",
        hint=f"Set a valid value with: occ config set {key.split('.')[0]} VALUE",
    )


def parse_config(text: str, source: Path) -> Config:
    from pydantic import ValidationError

    data = parse_jsonc(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a JSON object", hint="Fix the file by hand.")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(exc, str(source)) from None


def render(config: Config) -> str:
    return json.dumps(config.model_dump(), indent=2) + "\n"


def load_config(path: Path | None = None) -> Config:
    """The validated config; defaults when the file does not exist yet."""
    path = path or paths.config_file()
    text = safe_file.read_text(path)
    return Config() if text is None else parse_config(text, path)


def change_config(change, path: Path | None = None) -> Config:
    """Apply ``change(config) -> Config`` under the lock; the file is written only if valid."""
    path = path or paths.config_file()
    result: dict[str, Config] = {}

    def transform(old_text: str | None) -> str:
        current = Config() if old_text is None else parse_config(old_text, path)
        result["config"] = change(current)
        return render(result["config"])

    safe_file.update_text(path, transform)
    return result["config"]


def coerce_value(key: str, raw: str) -> Any:
    """Turn the string typed on the command line into the JSON value the key expects."""
    if key not in Config.model_fields:
        known = ", ".join(Config.model_fields)
        raise ConfigError(f"unknown config key '{key}'", hint=f"Known keys: {known}.")
    annotation = str(Config.model_fields[key].annotation)
    if "bool" in annotation:
        lowered = raw.strip().lower()
        if lowered in {"true", "yes", "on", "1"}:
            return True
        if lowered in {"false", "no", "off", "0"}:
            return False
        raise ConfigError(f"config key '{key}' takes true or false (got {raw!r})")
    if "int" in annotation:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"config key '{key}' takes a whole number (got {raw!r})") from None
    if "list" in annotation:
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
    if "None" in annotation and raw == "":
        return None  # an empty string clears an optional setting
    return raw


def with_value(config: Config, key: str, value: Any) -> Config:
    """A copy of ``config`` with ``key`` set, validated like a file load."""
    from pydantic import ValidationError

    data = config.model_dump()
    data[key] = value
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(exc, str(paths.config_file())) from None
