"""The sanitiser of text from elsewhere: examples, then properties over any input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opencode_cloud.output.sanitize import RESET, sanitize

pytestmark = pytest.mark.unit

SGR = re.compile(r"\x1b\[[0-9;:]{0,64}m")
# Everything a terminal could act on, but \t and \n (and the separators splitlines uses).
UNSAFE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


@pytest.mark.parametrize(
    ("text", "coloured", "plain"),
    [
        # the examples: a new terminal title, a cleared screen
        ("\x1b]0;pwned\x07", r"\x1b]0;pwned\x07", r"\x1b]0;pwned\x07"),
        ("\x1b[2J", r"\x1b[2J", r"\x1b[2J"),
        # colours pass in a terminal with colours on, and are removed otherwise
        ("\x1b[31mred\x1b[0m", "\x1b[31mred\x1b[0m", "red"),
        ("\x1b[1;38;5;208morange\x1b[m", "\x1b[1;38;5;208morange\x1b[m", "orange"),
        # a colour left on is reset at the end of its line
        ("\x1b[41malarm", f"\x1b[41malarm{RESET}", "alarm"),
        # cursor movement, erasing, scroll regions, DEC private modes, OSC 8, DCS
        ("a\x1b[1A\x1b[2Kb", r"a\x1b[1A\x1b[2Kb", r"a\x1b[1A\x1b[2Kb"),
        ("\x1b[?1049h", r"\x1b[?1049h", r"\x1b[?1049h"),
        ("\x1b]8;;http://evil\x1b\\x\x1b]8;;\x1b\\",
         "\\x1b]8;;http://evil\\x1b\\x\\x1b]8;;\\x1b\\",
         "\\x1b]8;;http://evil\\x1b\\x\\x1b]8;;\\x1b\\"),
        ("\x1bP+q\x1b\\", "\\x1bP+q\\x1b\\", "\\x1bP+q\\x1b\\"),
        ("\x1bc", r"\x1bc", r"\x1bc"),  # full reset
        # C1 controls: CSI, OSC, NEL as single characters
        ("\x9b2J\x9d0;t\x9c\x85", r"\x9b2J\x9d0;t\x9c\x85", r"\x9b2J\x9d0;t\x9c\x85"),
        # a carriage return would overwrite the line; a backspace would hide text
        ("ok\rFAILED", r"ok\rFAILED", r"ok\rFAILED"),
        ("secret\x08\x08\x08\x08\x08\x08public", r"secret\x08\x08\x08\x08\x08\x08public",
         r"secret\x08\x08\x08\x08\x08\x08public"),
        ("bell\x07 nul\x00 del\x7f", r"bell\x07 nul\x00 del\x7f", r"bell\x07 nul\x00 del\x7f"),
        # concealed text is not a colour: shown escaped, not passed
        ("\x1b[8mhidden", r"\x1b[8mhidden", "hidden"),
        ("\x1b[0;8mhidden", r"\x1b[0;8mhidden", "hidden"),
        ("\x1b[38;5;8mgrey\x1b[0m", "\x1b[38;5;8mgrey\x1b[0m", "grey"),  # colour 8 is grey
        # an SGR with an absurd parameter list is not let through
        ("\x1b[" + "1;" * 40 + "m", r"\x1b[" + "1;" * 40 + "m", r"\x1b[" + "1;" * 40 + "m"),
        # bidi overrides ("Trojan Source") and Unicode line separators
        ("abc\u202edef\u2066", r"abc\u202edef\u2066", r"abc\u202edef\u2066"),
        ("a\u2028b\u2029c", r"a\u2028b\u2029c", r"a\u2028b\u2029c"),
        # tabs, newlines and CRLF line ends stay text
        ("a\tb\nc\r\nd", "a\tb\nc\nd", "a\tb\nc\nd"),
        # ordinary text, Unicode and backslashes are left alone
        ("naïve 日本語 ✓ C:\\path \\x1b", "naïve 日本語 ✓ C:\\path \\x1b",
         "naïve 日本語 ✓ C:\\path \\x1b"),
        ("", "", ""),
    ],
)
def test_examples(text, coloured, plain):
    assert sanitize(text, keep_sgr=True) == coloured
    assert sanitize(text, keep_sgr=False) == plain


def test_each_line_of_several_is_reset_on_its_own():
    assert sanitize("\x1b[32mone\ntwo\x1b[0m\n\x1b[1mthree", keep_sgr=True) == (
        f"\x1b[32mone{RESET}\ntwo\x1b[0m\n\x1b[1mthree{RESET}")


# -- properties --------------------------------------------------------------------------------
PIECES = [
    "\x1b", "[", "]", ";", "m", "0", "1", "8", "31", "38;5;8", "2J", "\x07", "\x9b", "\r",
    "\n", "\r\n", "\t", "\x00", "\x7f", "\x85", "\u2028", "\u202e", "\\", "a", " ", "é",
    "\x1b[31m", "\x1b[0m", "\x1b[m", "\x1b[8m", "\x1b]0;pwned\x07", "\x1b[2J", "\x1b[1A",
    "\x1b\\", "\ud800",
]
# Arbitrary text (surrogates included), and text built from the pieces attacks are made of.
texts = st.one_of(
    st.text(st.characters(exclude_categories=())),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=40).map("".join),
)


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_without_colours_nothing_but_tab_and_newline_is_a_control(text):
    out = sanitize(text, keep_sgr=False)
    assert "\x1b" not in out
    assert not UNSAFE.search(out)


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_with_colours_only_sgr_sequences_remain(text):
    out = sanitize(text, keep_sgr=True)
    rest = SGR.sub("", out)
    assert "\x1b" not in rest
    assert not UNSAFE.search(rest)
    assert "\x1b[8m" not in out
    # a line that uses a colour ends with a reset: nothing spills into the next line
    for line in out.split("\n"):
        if SGR.search(line):
            assert line.endswith((RESET, "\x1b[m"))


@settings(max_examples=500, deadline=None)
@given(texts, st.booleans())
def test_lines_stay_lines(text, keep_sgr):
    out = sanitize(text, keep_sgr=keep_sgr)
    # the printer splits with splitlines: after sanitising it splits only where "\n" is
    assert (out + "x").splitlines() == (out + "x").split("\n")
    assert out.count("\n") == text.replace("\r\n", "\n").count("\n")


@settings(max_examples=500, deadline=None)
@given(texts, st.booleans())
def test_sanitising_twice_changes_nothing(text, keep_sgr):
    once = sanitize(text, keep_sgr=keep_sgr)
    assert sanitize(once, keep_sgr=keep_sgr) == once


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"),
                             exclude_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067"
                                                "\u2068\u2069")), st.booleans())
def test_text_without_controls_is_unchanged(text, keep_sgr):
    assert sanitize(text, keep_sgr=keep_sgr) == text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["", "0", "1", "31", "38;5;196", "48;2;1;2;3", "4:3"]),
                min_size=1, max_size=4).map(";".join), st.text("abc xyz", max_size=10))
def test_colour_sequences_pass_unchanged(params, word):
    text = f"\x1b[{params}m{word}\x1b[0m"
    assert sanitize(text, keep_sgr=True) == text
    assert sanitize(text, keep_sgr=False) == word
