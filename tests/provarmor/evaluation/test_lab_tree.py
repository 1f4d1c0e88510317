import json

import msgspec
import pytest

from provarmor.evaluation.dataset import load_dataset
from provarmor.evaluation.lab_tree import TREE_FILE, LabTree, keep_lab_tree
from provarmor.model.actions import Action
from provarmor.model.errors import ConfigError


@pytest.fixture
def recorded(data_dir):
    """The first 1.6 s of a lab run (tc-webshell-implant, --background all) recorded on a
    machine other engineers were using; run.runner holds the ``lab run`` process's pid."""
    run = data_dir / "lab" / "shared-machine" / "run"
    return run, int((run.parent / "run.runner").read_text())


def _programs(dataset):
    return {e.process.command_line or e.process.executable for e in dataset.events()}


def test_the_cut_keeps_the_lab_and_leaves_the_machine_s_other_work_out(recorded, tmp_path):
    run, runner = recorded
    report = keep_lab_tree(run, tmp_path / "cut", runner_pid=runner)
    cut = load_dataset(tmp_path / "cut")
    kept, everything = _programs(cut), _programs(load_dataset(run))
    other = {p for p in everything if "postgres" in p or "/work/wt/fleetperf/" in p}
    assert other  # other engineers' database and test suite ran beside the lab
    assert not other & kept
    # the benign workloads the runner started, the web app it started before the recording
    # and what the attacker ran through the web app
    truth = cut.truth
    assert any(f"/home/{truth.users['dev']}/" in p for p in kept)  # git work of the developer
    assert any("provarmor/lab/webapp.py" in p for p in kept)
    attacker = set(cut.labels.processes)
    assert attacker  # the web shell's processes are in the excerpt
    assert attacker <= {e.process.entity_id for e in cut.events()}
    assert report.kept_events == cut.meta.events == sum(1 for _ in cut.events())
    assert report.machine_events == load_dataset(run).meta.events > report.kept_events
    assert report.runner_pid == runner
    assert truth.web_pid in report.servers
    assert (tmp_path / "cut" / "labels.json").read_bytes() == (run / "labels.json").read_bytes()
    assert (
        json.loads((tmp_path / "cut" / TREE_FILE).read_text())["kept_events"] == report.kept_events
    )


def test_a_cut_dataset_is_not_written_over(recorded, tmp_path):
    run, runner = recorded
    keep_lab_tree(run, tmp_path / "cut", runner_pid=runner)
    with pytest.raises(ConfigError, match="exists"):
        keep_lab_tree(run, tmp_path / "cut", runner_pid=runner)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut"]  # no partial copy left


def test_a_process_reusing_a_server_pid_after_the_recording_began_is_not_the_server(recorded):
    run, runner = recorded
    dataset = load_dataset(run)
    truth = dataset.truth
    web = next(e for e in dataset.events() if e.process.pid == truth.web_pid)
    late = msgspec.structs.replace(
        web.process, entity_id="reused", start=truth.started_ns + 10_000_000_000
    )
    tree = LabTree(
        runner_pid=runner, servers=frozenset({truth.web_pid}), recording_start_ns=truth.started_ns
    )
    tree.see(msgspec.structs.replace(web, process=late))
    tree.see(web)
    assert tree.members() == {web.process.entity_id}


def test_a_child_whose_fork_arrives_before_its_parent_s_is_kept(recorded):
    """The sensor's per-CPU buffers deliver a child's fork before its parent's at times (a
    web shell's curl before the shell's own fork, in a recorded nodlink run)."""
    run, runner = recorded
    events = list(load_dataset(run).events())
    forks = [e for e in events if e.event.action == Action.FORK]
    started = {e.process.entity_id for e in forks if e.process.parent.pid == runner}
    child = next(e for e in forks if e.process.parent.entity_id in started)
    parent = next(e for e in forks if e.process.entity_id == child.process.parent.entity_id)
    tree = LabTree(runner_pid=runner, servers=frozenset(), recording_start_ns=0)
    for event in (child, parent):  # the child first
        tree.see(event)
    assert tree.members() == {child.process.entity_id, parent.process.entity_id}
