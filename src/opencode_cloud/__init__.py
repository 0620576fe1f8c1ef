"""opencode-cloud: run the opencode web UI as a persistent Docker service, locally or over SSH."""

__version__ = "0.1.0"
