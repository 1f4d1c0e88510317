from __future__ import annotations

from provarmor.sources.auditd.ordering import ForkReorderer, fork_child


def _push_all(reorderer, groups):
    released = []
    for group in groups:
        released += reorderer.push(group)
    return released + reorderer.flush()


def test_fork_child_of_clone3_and_of_other_calls(auditd_data, auditd_groups):
    groups = {g.serial: g for g in auditd_groups(auditd_data / "posix_spawn.log")}

    assert fork_child(groups[5255]) == "4179"  # clone3 by posix_spawn
    assert fork_child(groups[5256]) is None  # the child's execve


def test_fork_is_moved_before_its_childs_first_event(auditd_data, auditd_groups):
    groups = auditd_groups(auditd_data / "posix_spawn.log")
    spawn = next(g for g in groups if g.serial == 5255)
    # vfork-style order, as the kernel often writes it: the child's exec before the clone
    reordered = [g for g in groups if g is not spawn]
    child_exec = next(i for i, g in enumerate(reordered) if g.serial == 5256)
    reordered.insert(child_exec + 2, spawn)
    reorderer = ForkReorderer(lookahead=8)

    released = _push_all(reorderer, reordered)

    serials = [g.serial for g in released]
    assert serials.index(5255) == serials.index(5256) - 1
    assert reorderer.moved == 1
    assert sorted(serials) == sorted(g.serial for g in groups)


def test_thread_creation_stays_in_place(auditd_data, auditd_groups):
    groups = auditd_groups(auditd_data / "curl_http.log")
    reorderer = ForkReorderer()

    released = _push_all(reorderer, groups)

    assert [g.serial for g in released] == [g.serial for g in groups]
    assert reorderer.moved == 0


def test_lookahead_bounds_what_is_held_back(auditd_data, auditd_groups):
    groups = auditd_groups(auditd_data / "pipeline.log")[:5]
    reorderer = ForkReorderer(lookahead=2)

    assert reorderer.push(groups[0]) == []
    assert reorderer.push(groups[1]) == []
    assert reorderer.push(groups[2]) == [groups[0]]
    assert reorderer.flush() == groups[1:3]
    assert reorderer.flush() == []
