"""Sigma rules evaluated in-process on canonical events.

loader (pySigma parsing, errors with file and field) -> compiler (log source, field mapping,
predicate) -> ruleset (correlation references, silent rules, the check report) -> index
(dispatch by action and audit record type) -> detector (alerts, correlation engine).
"""

from provarmor.detection.sigma.checker import check_rules
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.detection.sigma.ruleset import CheckReport, RuleSet

__all__ = ["CheckReport", "RuleSet", "SigmaDetector", "check_rules"]
