"""`python -m sink`: the same front door as the `spoiler-sink` script."""

from sink.cli import main

main()
