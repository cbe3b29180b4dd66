"""`python -m producer`: the same front door as the `spoiler-producer` script."""

from producer.cli import main

main()
