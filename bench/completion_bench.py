#!/usr/bin/env python3
"""Shell completion time (issue 16): what bash waits for after TAB, median of 10.

Each measurement is one `occ` process answering Click's completion protocol
(`_OCC_COMPLETE=bash_complete`), as the shell calls it, with a hosts.json of 20 hosts.
Goal: under 150 ms. Reads only local files; nothing connects.

    python bench/completion_bench.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import subprocess  # noqa: E402
import time  # noqa: E402

from _common import median_of, occ_argv, private_env  # noqa: E402

LINES = ["occ status --host ", "occ restart --group ", "occ host show ",
         "occ config get opencode_", "occ config set image_source ", "occ sta"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    env = private_env()
    hosts = Path(env["XDG_CONFIG_HOME"]) / "opencode-cloud" / "hosts.json"
    hosts.parent.mkdir(parents=True)
    hosts.write_text(json.dumps({"version": 1, "default_host": None, "hosts": {
        f"web{n}": {"hostname": f"web{n}.example", "groups": ["prod" if n % 2 else "staging"]}
        for n in range(20)}}))
    worst = 0.0
    for line in LINES:
        samples = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(occ_argv(), env={**env, "_OCC_COMPLETE": "bash_complete",
                                            "COMP_WORDS": line,
                                            "COMP_CWORD": str(len(line.split(" ")) - 1)},
                           capture_output=True, check=True)
            samples.append((time.perf_counter() - started) * 1000)
        med = median_of(samples)
        worst = max(worst, med)
        print(f"  {line!r:<36} median {med:6.0f} ms")
    verdict = "met" if worst < 150 else "NOT met"
    print(f"slowest completion: {worst:.0f} ms (goal < 150 ms: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
