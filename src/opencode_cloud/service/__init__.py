"""Lifecycle operations on the opencode service. They take a DockerEndpoint and never know
whether the Engine is local or remote."""

# Seconds to wait for opencode to answer after a start (here, so that the CLI's options can
# name it without loading the service layer).
DEFAULT_START_TIMEOUT = 120.0
