"""Developer scripts of the repository (not installed): `python -m tools.<script>`."""
