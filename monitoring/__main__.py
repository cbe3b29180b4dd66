"""`python -m monitoring`: the same front door as the `spoiler-monitor` script."""

from monitoring.cli import main

main()
