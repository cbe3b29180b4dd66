"""`python -m stream_processor`: the same front door as the `spoiler-worker` script."""

from stream_processor.cli import main

main()
