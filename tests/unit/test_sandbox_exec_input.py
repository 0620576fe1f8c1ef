"""occ exec passes stdin on only when there is some: /dev/null (scripts, CI) gives none."""

from __future__ import annotations

import os

from opencode_cloud.service.sandbox_exec import stdin_given


def test_dev_null_and_no_stdin_are_no_input_and_a_pipe_is() -> None:
    with open(os.devnull) as null:
        assert stdin_given(null.fileno()) is False
    assert stdin_given(None) is False
    read, write = os.pipe()
    try:
        assert stdin_given(read) is True
    finally:
        os.close(read)
        os.close(write)
