"""What the image build depends on, and the shape of the Dockerfile it builds."""

from __future__ import annotations

import re
from importlib import resources

from opencode_cloud.config.model import Config
from opencode_cloud.image.build import build_inputs

DOCKERFILE = (resources.files("opencode_cloud.image") / "Dockerfile").read_text()


def test_cockpit_is_a_build_input_so_switching_it_rebuilds():
    off = build_inputs(Config())
    on = build_inputs(Config(cockpit_enabled=True))
    assert off.build_args["COCKPIT"] == "0"
    assert on.build_args["COCKPIT"] == "1"
    assert off.digest != on.digest
    assert build_inputs(Config()).digest == off.digest  # stable otherwise


def test_every_build_arg_is_declared_in_the_dockerfile():
    declared = set(re.findall(r"^ARG (\w+)", DOCKERFILE, re.MULTILINE))
    assert set(build_inputs(Config()).build_args) <= declared


def test_npm_runs_only_in_the_build_stage():
    stages = re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)
    assert len(stages) == 3, "a build stage and a final stage"
    final = stages[-1]
    assert "npm" not in final and "nodejs" not in final
    assert "COPY --from=opencode /opencode /usr/local/bin/opencode" in final
    assert "opencode --version" in final
