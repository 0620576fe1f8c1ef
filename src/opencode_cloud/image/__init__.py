"""The sandbox image: its Dockerfile, and building or pulling it on the target Engine."""
