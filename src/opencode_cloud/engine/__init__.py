"""Docker endpoints: where the Docker Engine of a target is reached (local socket, or a
socket forwarded over SSH). Service operations take an endpoint and never ask which."""
