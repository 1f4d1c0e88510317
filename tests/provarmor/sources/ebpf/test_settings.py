"""eBPF sensor settings: defaults that bpftrace 0.17 accepts."""

from __future__ import annotations

import pytest

from provarmor.model.errors import ConfigError
from provarmor.sources.ebpf.program import FAMILIES
from provarmor.sources.ebpf.settings import EbpfSettings


def test_defaults() -> None:
    settings = EbpfSettings()
    assert settings.strlen <= 200  # bpftrace 0.17 refuses more (strings live on the stack)
    assert settings.program.families == FAMILIES
    assert settings.perf_rb_pages == 0 and settings.exclude_pid == 0
    assert settings.stop_timeout_s > 10  # detaching ~100 probes takes ~7 s


def test_excluded_pids_fill_four_slots() -> None:
    assert EbpfSettings().excluded_pids(123) == (123, 0, 0, 0)
    assert EbpfSettings(exclude_pid=7, exclude_pids=(8, 9)).excluded_pids(123) == (7, 8, 9, 0)
    with pytest.raises(ConfigError, match="at most 3 extra pids"):
        EbpfSettings(exclude_pids=(1, 2, 3, 4)).excluded_pids(123)
