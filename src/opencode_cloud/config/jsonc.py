"""Reading JSON with comments (JSONC), as people write in hand-edited config files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opencode_cloud.errors import ConfigError


def parse_jsonc(text: str, source: Path) -> Any:
    """Parse JSON that may hold ``//`` and ``/* */`` comments and trailing commas.

    json5 is a superset of JSONC, so one well-kept parser covers both.
    """
    import json

    try:
        return json.loads(text)  # the common case, without loading json5
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        pass
    import json5

    try:
        value = json5.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(
            f"{source} is not valid JSON: {exc}",
            hint=f"Fix the file by hand, or move it away to start from defaults ({source}).",
        ) from exc
    # json5 reads an escaped surrogate pair ("\ud83d\ude00") as two lone surrogates; a
    # trip through json joins them as json.loads does (else a rewrite changes the text).
    return json.loads(json.dumps(value))
