import pytest

from provarmor.lab import techniques as t
from provarmor.lab.context import LabContext
from provarmor.lab.registry import SCENARIOS
from provarmor.lab.scenario import Plan, Scenario, StepSpec


def build(ctx):
    return Plan()


SCENARIO = Scenario(
    name="x",
    title="x",
    modelled_on="x",
    description="x",
    root_cause="x",
    steps=(
        StepSpec(name="a", summary="a", techniques=(t.EXPLOIT_PUBLIC_APP, t.UNIX_SHELL)),
        StepSpec(name="b", summary="b", techniques=(t.UNIX_SHELL, t.CRON, t.SUDO)),
    ),
    plan=build,
)


def test_techniques_are_distinct_in_first_use_order_and_tactics_follow():
    assert [x.id for x in SCENARIO.techniques] == ["T1190", "T1059.004", "T1053.003", "T1548.003"]
    assert [str(x) for x in SCENARIO.tactics] == [
        "initial-access",
        "execution",
        "persistence",
        "privilege-escalation",
    ]


def test_step_lookup():
    assert SCENARIO.step("b").summary == "b"
    with pytest.raises(KeyError):
        SCENARIO.step("c")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_account_a_scenario_creates_is_declared_for_the_journal(seed):
    # the run's account journal removes only the accounts it was told of: a scenario that
    # creates one (a throwaway account to guess, a backdoor account) must declare it
    for scenario in SCENARIOS:
        plan = scenario.plan(LabContext.from_seed(seed))
        texts = [" ".join(command) for command in plan.setup_commands]
        texts += [action.command for action in plan.actions]
        for text in texts:
            if "useradd" in text or "adduser" in text:
                assert any(name in text for name in plan.accounts), (scenario.name, text)
