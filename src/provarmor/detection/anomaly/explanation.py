"""Why a process scored high: its most surprising tokens, in words an analyst reads
("never seen in training: ...", "rare for curl: ...")."""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.detection.anomaly.profile import Profile
from provarmor.detection.anomaly.scorer import AnomalyModel, Scored

_VERBS = {
    "exe": "executable",
    "arg": "argument",
    "read": "read",
    "write": "write",
    "exec": "load/exec",
    "net": "",
    "child": "child",
    "other": "",
}


@dataclass(frozen=True, slots=True)
class Contribution:
    attribute: str
    token: str
    raw: str
    seen_in: int
    """Training processes (any executable) that showed this token (0: never seen)."""
    weight: float
    """The token's surprise."""


def contributions(
    model: AnomalyModel, profile: Profile, scored: Scored, *, limit: int
) -> list[Contribution]:
    """The ``limit`` most surprising tokens."""
    found = []
    for surprise, attribute, token in scored.surprises[:limit]:
        raw = profile.tokens[attribute].get(token, token)
        seen = model.document_frequency.get(f"{attribute} {token}", 0)
        if attribute == "exe":
            seen = model.executables.get(token, 0)
        found.append(Contribution(attribute, token, raw, seen, surprise))
    return found


def describe(model: AnomalyModel, profile: Profile, items: list[Contribution]) -> str:
    """One paragraph: what the process did that its executable never did in training."""
    program = profile.executable.rsplit("/", 1)[-1] or "process"
    runs = model.executables.get(profile.exe, 0)
    parts = []
    for item in items:
        verb = _VERBS[item.attribute]
        if item.attribute in ("net", "other"):
            verb = item.token.split(" ", 1)[0]
        what = f"{verb} {item.raw}" if item.attribute != "arg" else f"argument {item.token}"
        if item.seen_in == 0:
            parts.append(f"never seen in training: {what}")
        else:
            parts.append(
                f"rare for {program}: {what} (not in its {runs} training runs; in "
                f"{item.seen_in} of {model.processes} training processes)"
            )
    return f"{profile.executable or 'process'} behaves unlike the benign baseline; " + "; ".join(
        parts
    )
