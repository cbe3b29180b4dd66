"""`python -m training`: the same front door as the `spoiler-train` script."""

from training.cli import main

main()
