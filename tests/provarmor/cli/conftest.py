"""Fixtures for CLI tests: the application run in-process through Typer's runner or as a
real ``python -m provarmor`` process on a terminal of a given width, and the check that host
data reached the terminal escaped."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from provarmor.cli.app import app

RAW_CONTROLS = ("\x1b", "\x07", "\u202e", "\x9b", "\r")
"""Characters of hostile host data that must never reach a terminal as they are."""


@pytest.fixture
def invoke() -> Callable[..., Result]:
    """Run ``provarmor ARGS`` in-process on a 200-column terminal; an exception other than
    the command's exit fails the test with the output."""
    runner = CliRunner(env={"COLUMNS": "200"})

    def run(*args: object) -> Result:
        result = runner.invoke(app, [str(arg) for arg in args])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result

    return run


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m provarmor ARGS`` as a real process (the entry point prints errors;
    help and tables follow ``columns``)."""

    def run(*args: object, columns: int = 100) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "provarmor", *map(str, args)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "COLUMNS": str(columns)},
        )

    return run


@pytest.fixture
def assert_no_raw_controls() -> Callable[[str], None]:
    def check(output: str) -> None:
        for char in RAW_CONTROLS:
            assert char not in output, f"{char!r} reached the terminal"

    return check
