"""Lifecycle operations on the opencode service. They take a DockerEndpoint and never know
whether the Engine is local or remote."""
