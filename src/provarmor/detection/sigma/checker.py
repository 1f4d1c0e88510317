"""Check a rule directory: which rules load, which are unsupported (and why), which are broken.

``check_rules`` never raises on bad rules: broken files and documents are
:class:`~provarmor.model.errors.RuleError` entries naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path

from provarmor.detection.sigma.loader import load_rule_paths
from provarmor.detection.sigma.ruleset import CheckReport, build_ruleset
from provarmor.model.attack import AttackTable, load_attack_table
from provarmor.model.errors import RuleError


def check_rules(directory: Path, *, attack: AttackTable | None = None) -> CheckReport:
    """Load every ``*.yml``/``*.yaml`` under ``directory`` (or one file) and report."""
    if not directory.exists():
        report = CheckReport()
        report.errors.append(RuleError("no such file or directory", location=str(directory)))
        return report
    parsed = load_rule_paths([directory])
    _, report = build_ruleset(parsed, attack=attack or load_attack_table())
    return report


def format_report(report: CheckReport) -> list[str]:
    """The report as lines of text: totals, unsupported reasons by count, then errors."""
    lines = [
        f"files: {report.files}, rules: {report.total}, loaded: {len(report.loaded)} "
        f"({report.loaded_fraction:.1%}), unsupported: {len(report.unsupported)}, "
        f"errors: {len(report.errors)}"
    ]
    for reason, count in report.reasons().most_common():
        lines.append(f"  unsupported x{count}: {reason}")
    lines.extend(f"  error: {error}" for error in report.errors)
    lines.extend(f"  warning: {warning}" for warning in report.warnings)
    return lines
