"""`python -m edge_extract` runs the CLI."""

from .cli import main

main()
