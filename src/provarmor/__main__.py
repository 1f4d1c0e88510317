"""``python -m provarmor``: the same as the ``provarmor`` command."""

from provarmor.cli import main

main()
