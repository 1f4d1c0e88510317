import json

from provarmor.model.actions import Action
from provarmor.model.event import Host, LogRef
from provarmor.sources.base import HostContext
from provarmor.sources.sysdig.events import build_event, outcome, resolve
from provarmor.sources.sysdig.fields import parse_sysdig_line
from provarmor.sources.sysdig.processes import ProcessTable

HOST = Host(id="h")
LOG = LogRef(file="f", line=1, record="1")


def real(data_dir, number: int) -> dict:
    line = (data_dir / "sysdig" / "session.sysdig.jsonl").read_text().splitlines()[number - 1]
    return json.loads(line)


def build(raw: dict, table: ProcessTable | None = None):
    record = parse_sysdig_line(json.dumps(raw).encode(), location="x:1")
    return build_event(record, table=table or ProcessTable(HostContext()), host=HOST, log=LOG)


def test_enter_events_are_skipped_but_procexit_is_not(data_dir):
    assert build({**real(data_dir, 20), "evt.dir": ">"}) == "enter_event"
    exit_event = build(real(data_dir, 91))
    assert not isinstance(exit_event, str) and exit_event.event.action is Action.EXIT


def test_thread_clone_and_thread_exit_are_skipped(data_dir):
    assert build(real(data_dir, 28)) == "thread_clone"
    assert build(real(data_dir, 39)) == "thread_exit"


def test_child_side_clone_is_used_only_when_the_parent_side_is_missing(data_dir):
    child_side = {**real(data_dir, 18), "evt.args": "res=0 ptid=7930(session.sh)", "proc.pid": 7933}
    table = ProcessTable(HostContext())
    assert not isinstance(build(real(data_dir, 18), table), str)
    assert build(child_side, table) == "clone_child_side"
    alone = build(child_side)
    assert not isinstance(alone, str)
    assert (alone.process.pid, alone.process.parent.pid) == (7933, 7930)


def test_unmapped_types_and_missing_pids_are_named():
    assert build({"evt.type": "fstat", "evt.time": 1}) == "unmapped:fstat"
    assert build({"evt.type": "read", "evt.time": 1}) == "no_pid"


def test_outcome_reads_res_and_rawres(data_dir):
    record = parse_sysdig_line(json.dumps(real(data_dir, 13)).encode(), location="x:1")
    assert outcome(record) == "failure"
    ok = parse_sysdig_line(b'{"evt.type": "read", "evt.time": 1, "evt.rawres": 4}', location="x")
    assert outcome(ok) == "success"
    unknown = parse_sysdig_line(b'{"evt.type": "read", "evt.time": 1}', location="x")
    assert outcome(unknown) == "unknown"


def test_relative_paths_resolve_against_the_working_directory():
    state = ProcessTable(HostContext()).seen(1, at=0)
    assert resolve(state, "a/../b.txt") == "a/../b.txt"
    state.cwd = "/tmp/pa-rec"
    assert resolve(state, "a/../b.txt") == "/tmp/pa-rec/b.txt"
    assert resolve(state, "/etc//passwd") == "/etc/passwd"
    assert resolve(state, "NULL") == ""
