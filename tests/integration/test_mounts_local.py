"""``occ mount`` on this machine's real Engine: a folder of this machine in the sandbox,
what opencode and ``occ exec`` write there belonging to the folder's owner (the test's own
account), opencode healthy with its re-owned volumes."""

from __future__ import annotations

import json
import os


def test_a_local_folder_is_mounted_and_what_the_sandbox_writes_is_mine(service, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "readme.txt").write_text("mine\n")
    service("mount", "add", str(folder), check=True)
    service("start", check=True)
    report = json.loads(service("status", "--json", check=True).stdout)
    assert report["health"] == "healthy" and report["drift"] == [], report
    assert report["mounts"] == [{"host_path": str(folder), "read_only": False,
                                 "container_path": "/home/opencoder/workspace/project"}]
    seen = service("exec", "--", "sh", "-c", "cat ~/workspace/project/readme.txt && "
                   "echo written > ~/workspace/project/out.txt && id -u", check=True)
    assert seen.stdout.split() == ["mine", str(os.getuid())]
    made = (folder / "out.txt").stat()
    assert (made.st_uid, made.st_gid) == (os.getuid(), os.getgid())
    assert (folder / "out.txt").read_text() == "written\n"
    # opencode itself runs as the folder's owner too
    procs = service("exec", "--", "sh", "-c", 'for p in /proc/[0-9]*; do [ "$(cat $p/comm '
                    '2>/dev/null)" = opencode ] && stat -c %u $p; done; true', check=True)
    assert set(procs.stdout.split()) == {str(os.getuid())}, procs.stdout
