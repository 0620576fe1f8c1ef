import os
import stat
import subprocess
import sys
from pathlib import Path

from opencode_cloud.storage import safe_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_creates_private_file_and_folder(tmp_path: Path):
    target = tmp_path / "deep" / "er" / "config.json"
    safe_file.atomic_write(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert mode(target) == 0o600
    assert mode(target.parent) == 0o700


def test_existing_loose_folder_is_tightened(tmp_path: Path):
    folder = tmp_path / "cfg"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    safe_file.atomic_write(folder / "x.json", "1")
    assert mode(folder) == 0o700


def test_update_text_sees_the_old_text(tmp_path: Path):
    target = tmp_path / "f"
    safe_file.update_text(target, lambda old: "a" if old is None else old + "b")
    safe_file.update_text(target, lambda old: "a" if old is None else old + "b")
    assert target.read_text() == "ab"


def test_writer_killed_before_rename_leaves_old_file_intact(tmp_path: Path):
    target = tmp_path / "config.json"
    safe_file.atomic_write(target, '{"opencode_web_port": 3000}\n')
    # A real writer process dies (SIGKILL) after writing and fsyncing the temporary file,
    # right where it would rename it over the old one.
    script = f"""
import os, signal
from pathlib import Path
from opencode_cloud.storage import safe_file
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
safe_file.atomic_write(Path({str(target)!r}), "half-written garbage")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode == -9
    assert target.read_text() == '{"opencode_web_port": 3000}\n'
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers, "the killed writer should have got as far as its temporary file"


def test_a_waiting_lock_names_the_holder_after_two_seconds_and_gives_up_at_its_timeout(
        tmp_path, monkeypatch) -> None:
    import os
    import threading

    import pytest

    from opencode_cloud import report
    from opencode_cloud.storage import safe_file

    said: list[str] = []
    monkeypatch.setattr(report, "lock_wait_notice", said.append)
    monkeypatch.setattr(safe_file, "LOCK_NOTICE_AFTER", 0.3)
    lock = tmp_path / "hosts.json.lock"
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with safe_file.lock_file(lock):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    with pytest.raises(safe_file.LockTimeout) as info, \
            safe_file.lock_file(lock, what=tmp_path / "hosts.json", timeout=1):
        pass
    assert said == [f"waiting for another occ (pid {os.getpid()}) to finish with "
                    f"{tmp_path / 'hosts.json'}"]
    assert f"pid {os.getpid()}" in info.value.message
    release.set()
    thread.join()
    with safe_file.lock_file(lock, timeout=1):  # free again
        pass
