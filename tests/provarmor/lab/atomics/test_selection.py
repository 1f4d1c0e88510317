from dataclasses import replace
from pathlib import Path

import pytest

from provarmor.lab.atomics.arguments import Workspace
from provarmor.lab.atomics.downloads import BASE_URL
from provarmor.lab.atomics.model import load_catalogue
from provarmor.lab.atomics.selection import SkipReason, matches, select


@pytest.fixture
def verdicts(atomics_data):
    catalogue = load_catalogue(atomics_data)
    found = {}
    for test in catalogue.linux_tests:
        scratch = f"/var/lib/provarmor/lab/atomics/r/{test.test_id}"
        space = Workspace(scratch=scratch, atomics=f"{scratch}/atomics")
        found[test.test_id] = select(test, workspace=space, atomics=catalogue.atomics)
    return found


def test_harmless_tests_are_selected_with_their_texts_filled(verdicts):
    plan = verdicts["T1036.008-1"].plan
    assert plan is not None and plan.shell == "/bin/sh"
    assert "echo '#!/bin/sh' > /tmp/image.png" in plan.command
    assert plan.cleanup.strip() == "rm -f /tmp/image.png"
    shadow = verdicts["T1003.008-1"].plan
    assert shadow.shell == "/bin/bash"
    assert "> /var/lib/provarmor/lab/atomics/r/T1003.008-1/tmp/T1003.008.txt" in shadow.command


def test_downloads_with_a_local_copy_are_served(verdicts):
    plan = verdicts["T1059.004-2"].plan
    assert plan is not None
    assert plan.served == ("T1059.004/src/echo-art-fish.sh",)
    assert f"{BASE_URL}/T1059.004/src/echo-art-fish.sh" in plan.command


@pytest.mark.parametrize(
    ("test_id", "reason", "detail"),
    [
        ("T1529-3", SkipReason.UNSAFE, "power"),
        ("T1529-16", SkipReason.UNSAFE, "sysrq"),
        ("T1529-7", SkipReason.OTHER_SYSTEM, "FreeBSD"),
        ("T1059.004-1", SkipReason.INTERNET, "8.8.8.8"),
        ("T1053.003-2", SkipReason.UNSAFE, "/etc/cron.monthly"),
    ],
)
def test_tests_that_cannot_run_say_why(verdicts, test_id, reason, detail):
    verdict = verdicts[test_id]
    assert not verdict.runnable and verdict.reason is reason
    assert detail in verdict.detail


def test_dependencies_that_need_the_internet_are_planned_as_blocked(verdicts):
    plan = verdicts["T1059.004-3"].plan
    assert plan is not None
    (dependency,) = plan.dependencies
    assert dependency.fix_blocked.startswith("needs internet: https://raw.githubusercontent.com")


def test_allow_listed_packages_stand_in_for_a_package_fix(verdicts):
    (dependency,) = verdicts["T1059.004-12"].plan.dependencies
    assert dependency.packages == ("curl",)
    assert dependency.fix_blocked.startswith("installs packages (curl)")


def test_only_selects_tests_techniques_and_parents(atomics_data):
    tests = load_catalogue(atomics_data).linux_tests
    assert {t.test_id for t in tests if matches(t, ["T1059.004-2"])} == {"T1059.004-2"}
    assert len([t for t in tests if matches(t, ["t1003.008"])]) == 5
    assert len([t for t in tests if matches(t, ["T1059"])]) == 17
    guid = "1214f818-673b-4494-9fbd-99af0e185866"
    assert [t.test_id for t in tests if matches(t, [guid])] == ["T1036.008-1"]


@pytest.mark.shared
def test_the_shared_atomics_split_into_selected_and_skipped_with_reasons(shared_data):
    catalogue = load_catalogue(shared_data / "atomic-red-team")
    counts: dict[str, int] = {}
    for test in catalogue.linux_tests:
        scratch = f"/var/lib/provarmor/lab/atomics/r/{test.test_id}"
        space = Workspace(scratch=scratch, atomics=f"{scratch}/atomics")
        verdict = select(test, workspace=space, atomics=Path(catalogue.atomics))
        key = str(verdict.reason) if verdict.reason else "selected"
        counts[key] = counts.get(key, 0) + 1
    assert sum(counts.values()) == 391
    assert counts["executor"] == 12 and counts["cloud-or-container"] == 11
    assert 150 <= counts["selected"] <= 230 and counts["unsafe"] >= 70


def test_a_terminal_program_is_skipped_as_interactive(verdicts):
    verdict = verdicts["T1059.004-17"]
    assert verdict.reason is SkipReason.INTERACTIVE and "emacs -Q -nw" in verdict.detail


def test_a_payload_the_local_copy_lacks_is_skipped_unless_a_dependency_makes_it(atomics_data):
    catalogue = load_catalogue(atomics_data)
    base = next(t for t in catalogue.tests if t.test_id == "T1036.008-1")
    space = Workspace(scratch="/s/T", atomics="/s/T/atomics")
    absent = replace(
        base, executor=replace(base.executor, command="sh PathToAtomicsFolder/T1036.008/bin/x")
    )
    verdict = select(absent, workspace=space, atomics=catalogue.atomics)
    assert verdict.reason is SkipReason.PAYLOAD and verdict.detail.endswith("T1036.008/bin/x")
    harvest = next(t for t in catalogue.tests if t.test_id == "T1059.004-3")
    assert select(harvest, workspace=space, atomics=catalogue.atomics).runnable
