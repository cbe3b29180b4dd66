"""`python -m devstack`: the same front door as the `spoiler-stack` script."""

from devstack.cli import main

main()
