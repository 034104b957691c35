"""`python -m reconciler` runs the `lwr` command line."""

from reconciler.cli import main

main()
