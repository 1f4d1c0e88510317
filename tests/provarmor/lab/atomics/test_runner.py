import contextlib
import subprocess
from pathlib import Path

import pytest

from provarmor.evaluation.groundtruth import load_ground_truth
from provarmor.lab import snapshot
from provarmor.lab.atomics import runner
from provarmor.lab.atomics.model import load_catalogue
from provarmor.lab.atomics.results import load_results
from provarmor.lab.environment import STATE_DIR
from provarmor.lab.jail import leftover_jails
from provarmor.lab.netns import lab_namespaces
from provarmor.model.errors import ConfigError

HARMLESS = ["T1036.008-1", "T1003.008-3", "T1053.003-3", "T1059.004-2"]


def test_selection_covers_every_linux_test_named(atomics_data, tmp_path):
    catalogue = load_catalogue(atomics_data)
    verdicts = runner.select_tests(catalogue, run_dir=tmp_path, only=["T1529"])
    assert len(verdicts) == 10 and not any(verdict.runnable for verdict in verdicts)
    assert len(runner.select_tests(catalogue, run_dir=tmp_path)) == 37


def test_refuses_to_run_without_root(monkeypatch, atomics_data, tmp_path, recorder):
    monkeypatch.setattr(runner, "is_root", lambda: False)
    with pytest.raises(ConfigError, match="needs root"):
        runner.run_atomics(atomics_data, recorder=recorder, out_dir=tmp_path)
    assert recorder.calls == []


def test_refuses_to_run_beside_another_lab_run(monkeypatch, atomics_data, tmp_path, recorder):
    monkeypatch.setattr(runner, "is_root", lambda: True)
    monkeypatch.setattr(runner, "_exclusive", contextlib.nullcontext)
    monkeypatch.setattr(runner, "lab_busy", lambda: "another lab run is in progress")
    with pytest.raises(ConfigError, match="another lab run"):
        runner.run_atomics(atomics_data, recorder=recorder, out_dir=tmp_path)
    assert recorder.calls == []


@pytest.mark.privileged
def test_the_lab_lock_excludes_a_second_run_and_is_removed_afterwards():
    lock = STATE_DIR / "lab.lock"
    with runner._exclusive():
        assert lock.exists()
        with pytest.raises(ConfigError, match="holds the lab lock"), runner._exclusive():
            pass
    assert not lock.exists()


@pytest.mark.privileged
@pytest.mark.exclusive  # every entry of /tmp before and after: no other test may make one
def test_a_real_run_records_results_cleans_up_and_leaves_the_machine_as_before(
    sandbox_machine, atomics_data, tmp_path, recorder
):
    before = snapshot.take("pytest-atomics-run")
    tmp_before = set(Path("/tmp").iterdir())
    report = runner.run_atomics(
        atomics_data, recorder=recorder, out_dir=tmp_path, only=HARMLESS, timeout_s=20
    )
    assert recorder.calls == ["start", "stop"]
    assert (report.considered, report.selected, report.ran, report.failed) == (4, 4, 4, 0)
    assert report.linux_tests == 37 and report.files == 5

    stored = load_results(tmp_path / "results.json")
    assert stored == report
    by_id = {record.id: record for record in stored.results}
    cron = by_id["T1053.003-3"]
    assert (
        cron.status == "ran" and cron.technique == "T1053.003" and cron.technique_v18 == "T1053.003"
    )
    assert [phase.phase for phase in cron.phases] == ["command", "cleanup"]
    assert all(phase.exit_code == 0 for phase in cron.phases)
    assert cron.root_pid == cron.phases[0].pid and cron.root_start_ns > 0
    assert report.started_ns <= cron.started_ns < cron.ended_ns <= report.ended_ns
    assert cron.differences == ()
    download = by_id["T1059.004-2"]
    assert download.status == "ran" and download.exit_code == 0

    truth = load_ground_truth(tmp_path / "labels.json")
    assert truth.kind == "atomics" and [step.name for step in truth.steps] == sorted(HARMLESS)
    roots = {(root.pid, root.via) for root in truth.attacker_roots}
    assert (cron.root_pid, "atomic-command") in roots
    assert any(infra.role == "atomics-http" for infra in truth.infrastructure)
    assert "T1053.003-3" in (tmp_path / "transcript.log").read_text()

    assert snapshot.differences(before) == []
    assert not Path("/etc/cron.d/persistevil").exists()
    assert set(Path("/tmp").iterdir()) - tmp_before <= {tmp_path.parents[1]}
    assert not [g for g in leftover_jails() if g.name.startswith("provarmor-lab-a")]
    assert not [n for n in lab_namespaces() if n.startswith("provarmor-lab-a")]
    assert not list(STATE_DIR.glob("state-atomics-*.json"))
    assert not list(runner.SCRATCH_ROOT.glob("atomics-*"))
    assert not (STATE_DIR / "lab.lock").exists()
    assert not runner.SCRATCH_ROOT.exists() or any(runner.SCRATCH_ROOT.iterdir())


def test_allow_listed_packages_are_installed_once_when_missing(monkeypatch, atomics_data, tmp_path):
    catalogue = load_catalogue(atomics_data)
    verdicts = runner.select_tests(catalogue, run_dir=tmp_path, only=["T1059.004-12"])
    asked = []

    def install(names):
        asked.append(list(names))
        return subprocess.CompletedProcess(["apt-get"], 0, "", "")

    monkeypatch.setattr(runner, "missing", lambda names: [n for n in names if n == "curl"])
    monkeypatch.setattr(runner, "install", install)
    assert runner._install_packages(verdicts) == ("curl",)
    assert asked == [["curl"]]
