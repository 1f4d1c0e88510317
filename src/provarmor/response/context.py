"""What every action needs to know about the host it runs on: who the host is, its process
clock, the agent's own pid, the settings. Built once by :func:`build_context`; tests build
one pointing at a network namespace (``nft_command``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from provarmor.response.settings import ResponseSettings
from provarmor.sources.procfs import HostIdentity, ProcClock, read_clock, read_host_identity


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseContext:
    settings: ResponseSettings
    host: HostIdentity
    clock: ProcClock
    agent_pid: int
    proc: Path = Path("/proc")


def build_context(settings: ResponseSettings, *, proc: Path = Path("/proc")) -> ResponseContext:
    return ResponseContext(
        settings=settings,
        host=read_host_identity(proc),
        clock=read_clock(proc),
        agent_pid=os.getpid(),
        proc=proc,
    )
