"""Program options and kernel features."""

from __future__ import annotations

from provarmor.sources.ebpf.options import FAMILIES, ProgramOptions, socket_io


def test_socket_io_needs_the_network_family() -> None:
    assert socket_io(ProgramOptions())
    assert not socket_io(ProgramOptions(socket_io=False))
    assert not socket_io(ProgramOptions(families=("process", "file")))


def test_defaults_keep_every_family_and_the_interesting_ptrace_requests() -> None:
    options = ProgramOptions()
    assert options.families == FAMILIES == ("process", "file", "network", "identity")
    assert 16 in options.ptrace_requests and 0x4206 in options.ptrace_requests  # ATTACH, SEIZE
    assert 2 not in options.ptrace_requests  # PEEKDATA: reads are not reported
    assert options.max_cwd_steps <= 24  # the verifier explores every step
