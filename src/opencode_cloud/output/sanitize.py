"""Make text from elsewhere (container logs, a host's command output, remote errors) safe
to write to a terminal.

Such text may carry escape sequences that retitle the terminal (``ESC ] 0;… BEL``), clear
it (``ESC [ 2J``), move the cursor over earlier lines, hide text, or worse in some
terminals. :func:`sanitize` lets through only colours, and only when colours are on:

- SGR sequences (``ESC [ params m``) pass when ``keep_sgr`` is true, except one that
  conceals text (attribute 8), which is shown escaped. A line that used colours ends with a
  reset, so a colour left on never spills into the next line or its ``[host]`` prefix.
- With ``keep_sgr`` false (no terminal, ``--no-color``, ``NO_COLOR``) SGR sequences are
  removed, so ``occ logs | grep`` sees the plain text.
- Every other control character is shown escaped, as Python writes it: ``\\x1b``,
  ``\\x07``, ``\\x9b`` (C1), ``\\r``; likewise DEL, the Unicode line and paragraph
  separators, the bidirectional overrides ("Trojan Source") and lone surrogates. So an
  escape sequence shows as harmless text: ``\\x1b]0;pwned\\x07``.
- ``\\t`` and ``\\n`` stay (a ``\\r\\n`` line end becomes ``\\n``). After sanitising, ``\\n``
  is the only character ``str.splitlines`` splits on, so the printer's lines are the
  text's lines.

Backslashes are not doubled: a log that prints the text ``\\x1b`` looks the same as one
that printed the character, but neither can do anything to the terminal.

One pure function, no imports beyond ``re``: it is cheap on every path.
"""

from __future__ import annotations

import re

RESET = "\x1b[0m"
# An SGR sequence, with a bounded parameter list (terminals have choked on huge ones).
_SGR = r"\x1b\[[0-9;:]{0,64}m"
# What is never written as it is: C0 controls but \t and \n, DEL, C1 controls, the Unicode
# line/paragraph separators, the bidi embeddings, overrides and isolates, lone surrogates.
_UNSAFE = r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
_TOKEN = re.compile(f"({_SGR})|{_UNSAFE}")
_SHORT = {"\r": "\\r"}


def _escape(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _conceals(sequence: str) -> bool:
    """Does this SGR sequence switch on concealed (invisible) text, attribute 8?

    The parameters of 38/48/58 (extended colours: ``5;N`` or ``2;R;G;B``) are numbers of a
    colour, not attributes, so ``38;5;8`` (colour 8, grey) does not conceal.
    """
    params = sequence[2:-1].split(";")
    i = 0
    while i < len(params):
        param = params[i]
        i += 1
        head = param.split(":")[0]  # 4:3 (curly underline), 38:5:8 (a colour) …
        number = int(head) if head else 0
        if number in (38, 48, 58):
            if ":" not in param and i < len(params):  # 38:5:8 carries its colour in itself
                mode = params[i]
                i += 1
                i += 1 if mode == "5" else 3 if mode == "2" else 0
        elif number == 8:
            return True
    return False


def sanitize(text: str, *, keep_sgr: bool) -> str:
    """``text`` with only SGR colour sequences (when ``keep_sgr``) as they are; every other
    control character but tab and newline escaped. See the module's doc."""
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(_sanitize_line(line, keep_sgr) for line in lines)


def _sanitize_line(line: str, keep_sgr: bool) -> str:
    coloured = False

    def replace(match: re.Match[str]) -> str:
        nonlocal coloured
        sequence = match.group(1)
        if sequence is None:
            return _escape(match.group(0))
        if not keep_sgr:
            return ""
        if _conceals(sequence):
            return "".join(_escape(c) if c == "\x1b" else c for c in sequence)
        coloured = True
        return sequence

    result = _TOKEN.sub(replace, line)
    if coloured and not result.endswith((RESET, "\x1b[m")):
        result += RESET
    return result
