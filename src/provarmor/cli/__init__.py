"""The ``provarmor`` command line (Typer + Rich). Top of the import layers: wires
everything below and holds no logic of its own beyond argument handling and display."""

from provarmor.cli.app import main

__all__ = ["main"]
