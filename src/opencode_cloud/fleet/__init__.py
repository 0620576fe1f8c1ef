"""One operation on many hosts at once: the runner, its results and the rolling order."""
