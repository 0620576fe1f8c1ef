"""Shared fixtures: an isolated occ environment and a way to run the real CLI."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


def _sigint_to_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Popen keyword arguments for a child that a test may interrupt with send_ctrl_c(): a
# process group of its own (as a terminal's foreground job has) and SIGINT at its default.
# A suite started with nohup or as a background job inherits SIGINT *ignored*, an ignored
# signal stays ignored across exec, and Python then never raises KeyboardInterrupt.
INTERRUPTIBLE: dict = {"process_group": 0, "preexec_fn": _sigint_to_default}


def tar_of(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar holding ``files`` (name -> bytes), in that order."""
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def send_ctrl_c(proc: subprocess.Popen) -> None:
    """What Ctrl-C in a terminal does: SIGINT to the whole (foreground) process group.

    ``proc`` must have been started with ``**INTERRUPTIBLE``.
    """
    with contextlib.suppress(ProcessLookupError):  # it has already ended
        assert os.getpgid(proc.pid) == proc.pid, "start the child with **INTERRUPTIBLE"
        os.killpg(proc.pid, signal.SIGINT)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The folder says what a test needs: unit (nothing), fuzz (nothing, but minutes of
    # generated input), integration (Docker), lab (remote hosts).
    for item in items:
        kind = Path(str(item.fspath)).relative_to(ROOT).parts[0]
        if kind in {"unit", "fuzz", "integration", "lab"}:
            item.add_marker(getattr(pytest.mark, kind))


class OccRunner:
    """Runs ``occ`` as a real subprocess with private config and data folders.

    ``forked``: calls run in a child forked from the test process (tests/forked_occ.py),
    for the unit suite's many short calls; popen() always starts a new interpreter.
    """

    def __init__(self, home: Path, forked: bool = False) -> None:
        self.home = home
        self.forked = forked
        self.config_dir = home / "config" / "opencode-cloud"
        self.data_dir = home / "data" / "opencode-cloud"
        self.env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "NO_COLOR": "1",
        }

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.json"

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "opencode_cloud", *args]

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 600, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        if self.forked:
            from tests.forked_occ import run_forked

            result = run_forked(args, self.env, input=input, timeout=timeout)
        else:
            result = subprocess.run(
                self.argv(*args),
                env=self.env,
                input=input,
                text=True,
                capture_output=True,
                timeout=timeout,
            )
        if check and result.returncode != 0:
            raise AssertionError(
                f"occ {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def popen(self, *args: str, **kwargs) -> subprocess.Popen[str]:
        """occ in the background, ready for send_ctrl_c()."""
        return subprocess.Popen(self.argv(*args), env=self.env, text=True,
                                **{**INTERRUPTIBLE, **kwargs})


@pytest.fixture
def occ(tmp_path: Path) -> OccRunner:
    return OccRunner(tmp_path)
