"""The written description of every scenario and benign workload, as Markdown.

``docs/lab.md`` embeds :func:`render` between two marker lines; a test fails when the file
and the registry drift apart. Regenerate with ``python -m provarmor.lab.catalogue``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from provarmor.lab.registry import SCENARIOS, WORKLOADS
from provarmor.lab.scenario import Scenario
from provarmor.lab.techniques import TACTIC_IDS
from provarmor.lab.workload import Workload

BEGIN = "<!-- BEGIN GENERATED: python -m provarmor.lab.catalogue -->"
END = "<!-- END GENERATED -->"


def _scenario(scenario: Scenario) -> list[str]:
    tactics = ", ".join(f"{tactic} ({TACTIC_IDS[tactic]})" for tactic in scenario.tactics)
    lines = [
        f"### `{scenario.name}`: {scenario.title}",
        "",
        f"*Modelled on:* {scenario.modelled_on}.",
        "",
        scenario.description,
        "",
        f"*Expected root cause:* {scenario.root_cause}",
        "",
        f"*Tactics ({len(scenario.tactics)}):* {tactics}.",
        "",
        "| # | step | what happens | techniques |",
        "| --- | --- | --- | --- |",
    ]
    for number, step in enumerate(scenario.steps, 1):
        techniques = "; ".join(f"{t.id} {t.name} ({t.tactic})" for t in step.techniques)
        lines.append(f"| {number} | `{step.name}` | {step.summary} | {techniques} |")
    return [*lines, ""]


def _workloads(workloads: Sequence[Workload]) -> list[str]:
    lines = ["| workload | what it does | resembles |", "| --- | --- | --- |"]
    for workload in workloads:
        lines.append(
            f"| `{workload.name}` | {workload.description} | {workload.looks_like or '-'} |"
        )
    return [*lines, ""]


def render() -> str:
    """Markdown for every registered scenario and workload."""
    lines = [BEGIN, "", "## Scenarios", ""]
    for scenario in SCENARIOS:
        lines += _scenario(scenario)
    lines += ["## Benign workloads", "", *_workloads(WORKLOADS), END]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
