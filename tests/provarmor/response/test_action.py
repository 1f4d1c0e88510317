"""The action seam: the context names this host as /proc does, and the result helpers."""

import os

from provarmor.response.action import build_context, failed, refused
from provarmor.response.records import Outcome
from provarmor.response.settings import ResponseSettings
from provarmor.sources.procfs import read_host_identity, read_process


def test_the_context_is_this_host_and_this_process(tmp_path):
    context = build_context(ResponseSettings(state_dir=tmp_path))
    assert context.host == read_host_identity()
    assert context.agent_pid == os.getpid()
    me = read_process(os.getpid(), clock=context.clock)
    assert me is not None and me.start > context.clock.btime * 1_000_000_000


def test_result_helpers():
    assert refused("no").outcome is Outcome.REFUSED
    result = failed("half", affected=("1",))
    assert (result.outcome, result.message, result.affected) == (Outcome.FAILED, "half", ("1",))
