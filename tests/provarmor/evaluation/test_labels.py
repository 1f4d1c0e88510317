from provarmor.evaluation.groundtruth import GroundTruth, RootProcess, Spawner
from provarmor.evaluation.labels import label_events
from provarmor.model.actions import Action
from provarmor.testing.factories import entity, make_event

S = 1_000_000_000
BASE = 1_700_000_000 * S
TAMPERED = "/home/dev/projects/app/vendor/zlite/configure"


def truth() -> GroundTruth:
    return GroundTruth(
        kind="scenario",
        name="t",
        seed=1,
        run_id="1-x",
        started_ns=BASE - 5 * S,
        ended_ns=BASE + 60 * S,
        attack_start_ns=BASE,
        attack_end_ns=BASE + 50 * S,
        attacker_roots=(RootProcess(pid=50, start_ns=BASE, step="exploit", via="webshell"),),
        spawners=(
            Spawner(
                pid=70,
                start_ns=BASE - 60 * S,
                from_ns=BASE + 10 * S,
                to_ns=BASE + 12 * S,
                role="host2",
                step="lateral",
            ),
        ),
        exec_roots=(TAMPERED,),
    )


def events():
    return [
        make_event(Action.EXEC, pid=10, ts=BASE - 10 * S, exe="/usr/bin/python3"),
        make_event(Action.FORK, pid=20, ppid=10, ts=BASE - 4 * S, exe="/bin/sh"),
        make_event(Action.FORK, pid=50, ppid=10, ts=BASE + S // 1000, exe="/bin/sh"),
        make_event(Action.EXEC, pid=50, ppid=10, ts=BASE + 2 * S // 1000, exe="/bin/sh"),
        make_event(Action.FORK, pid=51, ppid=50, ts=BASE + S),
        make_event(Action.FORK, pid=51, child_pid=52, ts=BASE + 2 * S),
        make_event(Action.CREATE, pid=52, ts=BASE + 3 * S, path="/tmp/.x/agent"),
        make_event(Action.CHMOD, pid=52, ts=BASE + 3 * S, path="/tmp/.x/agent"),
        make_event(Action.OPEN, pid=52, ts=BASE + 3 * S, path="/etc/shadow"),
        make_event(Action.CONNECT, pid=52, ts=BASE + 4 * S, ip="10.213.0.5", port=443),
        make_event(Action.EXEC, pid=53, ppid=52, ts=BASE + 5 * S, exe="/usr/bin/curl"),
        make_event(Action.RENAME, pid=53, ts=BASE + 5 * S, path="/tmp/b", original_path="/tmp/a"),
        make_event(Action.WRITE, pid=60, ppid=10, ts=BASE + 6 * S, path="/var/log/app.log"),
        make_event(Action.CONNECT, pid=60, ts=BASE + 6 * S, ip="127.0.0.1", port=5432),
        make_event(Action.FORK, pid=71, ppid=70, ts=BASE + 11 * S, exe="/usr/sbin/sshd"),
        make_event(Action.EXEC, pid=75, ppid=71, ts=BASE + 11 * S, exe="/bin/bash"),
        make_event(Action.FORK, pid=72, ppid=70, ts=BASE + 30 * S, exe="/usr/sbin/sshd"),
        make_event(Action.FORK, pid=80, ppid=90, ts=BASE + 20 * S, exe="/bin/sh"),
        make_event(
            Action.EXEC,
            pid=80,
            ppid=90,
            ts=BASE + 20 * S,
            exe=TAMPERED,
            path=TAMPERED,
            args=(TAMPERED,),
        ),
        make_event(Action.FORK, pid=81, ppid=80, ts=BASE + 21 * S, exe="/usr/bin/curl"),
        make_event(Action.FORK, pid=91, ppid=90, ts=BASE + 22 * S, exe="/usr/bin/gcc"),
    ]


def test_roots_and_every_descendant_are_malicious_and_nothing_else():
    labels = label_events(events(), truth())
    assert labels.processes == {entity(pid) for pid in (50, 51, 52, 53, 71, 75, 80, 81)}


def test_changed_files_and_reached_endpoints_are_collected_reads_are_not():
    labels = label_events(events(), truth())
    assert labels.files == {"/tmp/.x/agent", "/tmp/a", "/tmp/b"}
    assert labels.endpoints == {"10.213.0.5:443"}


def test_event_ids_cover_exactly_the_malicious_processes_events():
    recorded = events()
    labels = label_events(recorded, truth())
    expected = {e.event.id for e in recorded if e.process.entity_id in labels.processes}
    assert labels.events == expected
    assert len(expected) == 15


def test_order_of_events_does_not_matter():
    recorded = events()
    assert label_events(reversed(recorded), truth()) == label_events(recorded, truth())


def test_a_recycled_pid_before_the_attack_is_not_a_root():
    old = make_event(Action.FORK, pid=50, ppid=10, ts=BASE - 30 * S, host="other")
    labels = label_events([old], truth())
    assert labels.processes == frozenset()


def test_children_seen_before_the_attack_started_are_not_descendants():
    early = [
        make_event(Action.FORK, pid=80, ppid=90, ts=BASE + 20 * S),
        make_event(Action.EXEC, pid=80, ts=BASE + 20 * S, path=TAMPERED, exe=TAMPERED),
        make_event(Action.EXEC, pid=82, ppid=80, ts=BASE - 10 * S),
    ]
    labels = label_events(early, truth())
    assert labels.processes == {entity(80)}


def test_benign_run_labels_nothing():
    benign = GroundTruth(
        kind="benign",
        name="benign-mix",
        seed=1,
        run_id="r",
        started_ns=BASE,
        ended_ns=BASE + 60 * S,
    )
    assert label_events(events(), benign).processes == frozenset()
