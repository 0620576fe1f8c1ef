"""Start-up cost of the commands people type most: `occ --help` and `occ config show`.

Goal (issue 2): each under 150 ms wall time, median of 10, on this machine.
Usage: python bench/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse

from _common import private_env, report, run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    env = private_env()
    run(env, "config", "set", "opencode_web_port", "3000")  # a real file to read
    for args in (["--help"], ["config", "show"], ["--version"]):
        run(env, *args)  # warm the page cache once
        samples = [run(env, *args) for _ in range(runs)]
        report("occ " + " ".join(args), samples, goal_ms=150)


if __name__ == "__main__":
    main()
