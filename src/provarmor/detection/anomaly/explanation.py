"""Why a process scored high: its rarest tokens, weighted by how badly their attribute was
reconstructed, in words an analyst reads ("never seen in training: ...")."""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.detection.anomaly.profile import ATTRIBUTES, Profile
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
    """Training processes that showed this token (0: never seen)."""
    weight: float


def contributions(
    model: AnomalyModel, profile: Profile, scored: Scored, *, limit: int
) -> list[Contribution]:
    """The ``limit`` tokens that contribute most: rarity (IDF) x attribute error."""
    found = []
    for attribute, block_error in zip(ATTRIBUTES, scored.attribute_errors, strict=True):
        for token, raw in profile.tokens[attribute].items():
            key = f"{attribute} {token}"
            weight = model.idf(key) * (block_error + 1e-6)
            seen = model.document_frequency.get(key, 0)
            found.append(Contribution(attribute, token, raw, seen, weight))
    found.sort(key=lambda item: (-item.weight, item.attribute, item.token))
    return found[:limit]


def describe(model: AnomalyModel, profile: Profile, items: list[Contribution]) -> str:
    """One paragraph: the score, then the top contributions."""
    program = profile.executable.rsplit("/", 1)[-1] or "process"
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
                f"rare for {program}: {what} (in {item.seen_in} of {model.processes} "
                "training processes)"
            )
    return f"{profile.executable or 'process'} behaves unlike the benign baseline; " + "; ".join(
        parts
    )
