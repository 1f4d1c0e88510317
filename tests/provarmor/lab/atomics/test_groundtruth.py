from provarmor.lab.atomics.groundtruth import build_ground_truth, technique_ref
from provarmor.lab.atomics.results import AtomicRecord, AtomicsReport, PhaseRecord


def _phase(phase, pid):
    return PhaseRecord(
        phase=phase, pid=pid, start_ns=pid, started_ns=pid, ended_ns=pid + 1, exit_code=0
    )


def _record(test_id, technique, status, phases):
    return AtomicRecord(
        id=test_id,
        guid="",
        name=f"name of {test_id}",
        technique=technique,
        technique_v18=technique,
        technique_name="",
        executor="sh",
        status=status,
        started_ns=phases[0].started_ns if phases else 0,
        ended_ns=phases[-1].ended_ns if phases else 0,
        phases=tuple(phases),
    )


def test_ground_truth_roots_steps_and_infrastructure():
    ran = _record(
        "T1059.004-5",
        "T1059.004",
        "ran",
        [
            _phase("prereq", 100),
            _phase("get_prereq", 110),
            _phase("command", 120),
            _phase("cleanup", 130),
        ],
    )
    failed = _record("T1685-42", "T1685", "failed", [_phase("command", 200)])
    skipped = _record("T1529-3", "T1529", "skipped", [])
    report = AtomicsReport(
        atomics="/a",
        host_name="vm",
        files=3,
        tests=3,
        linux_tests=3,
        considered=3,
        selected=2,
        ran=1,
        failed=1,
        skipped=1,
        started_ns=50,
        ended_ns=300,
        duration_s=1.0,
        results=(ran, failed, skipped),
    )
    truth = build_ground_truth(report, run_id="r1", server=(7, 70))
    assert truth.kind == "atomics" and truth.run_id == "r1" and truth.host_name == "vm"
    assert [(s.name, s.ok) for s in truth.steps] == [("T1059.004-5", True), ("T1685-42", False)]
    assert [(r.pid, r.via, r.step) for r in truth.attacker_roots] == [
        (110, "atomic-get-prereq", "T1059.004-5"),
        (120, "atomic-command", "T1059.004-5"),
        (130, "atomic-cleanup", "T1059.004-5"),
        (200, "atomic-command", "T1685-42"),
    ]
    assert [(i.pid, i.role) for i in truth.infrastructure] == [
        (100, "atomic-prereq"),
        (7, "atomics-http"),
    ]
    assert (truth.attack_start_ns, truth.attack_end_ns) == (100, 201)
    assert not truth.completed
    assert [t.id for t in truth.techniques] == ["T1059.004", "T1685"]


def test_technique_refs_name_the_tactic_from_the_packaged_table():
    record = _record("T1685-42", "T1685", "ran", [_phase("command", 1)])
    ref = technique_ref(record)
    assert (ref.id, ref.name, ref.tactic) == ("T1685", "Disable or Modify Tools", "defense-evasion")
