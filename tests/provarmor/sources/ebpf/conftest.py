"""What the live eBPF tests share: the records a tapped sensor read, and the conditions of
the races they force on two CPUs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable

import pytest

from provarmor.model.errors import ParseError
from provarmor.sources.ebpf.wire import Header, parse_line

HeadersOf = Callable[[Iterable[bytes]], list[Header]]


def _headers(lines: Iterable[bytes]) -> list[Header]:
    headers = []
    for line in lines:
        try:
            parsed = parse_line(line.rstrip(b"\n"))
        except ParseError:
            continue
        if isinstance(parsed, Header):
            headers.append(parsed)
    return headers


@pytest.fixture(scope="session")
def headers_of() -> HeadersOf:
    """The record headers among raw bpftrace lines (a sensor's tap), other lines skipped."""
    return _headers


@pytest.fixture
def two_cpu_race() -> None:
    """Skips where a race between two CPUs cannot be forced on the live sensor."""
    if os.geteuid() != 0:
        pytest.skip("the sensor needs root")
    if shutil.which("bpftrace") is None:
        pytest.skip("bpftrace is not installed (scripts/bootstrap.sh dev installs it)")
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("the race needs CPUs 0 and 1")
