"""Scoring: how surprising a process's tokens are for ITS executable (conditional rarity).

Training counts, per executable, which tokens its processes showed in each attribute
(:data:`~.profile.ATTRIBUTES`). A token the executable never showed costs a *surprise*: the
negative log of the chance that one of its processes shows something new in that attribute,
estimated Good-Turing style as (tokens seen in exactly one of its processes + 1) / (its
processes + 2). An executable that always does the same things (many processes, few
one-off tokens) makes a new token very surprising; a shell or an interpreter that does
everything makes it cheap. Where training saw the executable started by the same parent
executable, that context is used instead (a shell started by a web server is judged by what
such shells did, not by what all shells did). A token never seen in training at all (by any
executable) adds the attribute's global surprise, weighted; an executable never seen adds its
own surprise.

A process scores the sum of its ``top_tokens`` highest surprises; a process whose executable
is unknown (running before the sensor started and never seen to exec) is not scored: it has no
habits to compare with. The score is incremental:
each profile carries how many tokens per attribute were scored and its top surprises, so a
re-scoring costs only the tokens added since. Scoring is pure Python dictionary lookups.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from provarmor.detection.anomaly.profile import ATTRIBUTES, Profile

KEY_SEPARATOR = "\x1f"
KEPT_SURPRISES = 8
"""Surprising tokens a profile keeps (the score uses the top ``top_tokens``; alerts name up
to this many)."""


def known_key(exe: str, attribute: str, token: str) -> str:
    """Key of :attr:`AnomalyModel.known`."""
    return f"{exe}{KEY_SEPARATOR}{attribute}{KEY_SEPARATOR}{token}"


def escape_key(exe: str, attribute: str) -> str:
    """Key of :attr:`AnomalyModel.escape`."""
    return f"{exe}{KEY_SEPARATOR}{attribute}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyModel:
    """Everything scoring needs; built by training, stored and loaded by the bundle."""

    processes: int
    """Training processes."""
    executables: dict[str, int]
    """Executable token, and executable in its parent's context (:func:`~.profile.context_key`)
    -> training processes that ran it."""
    known: dict[str, int]
    """:func:`known_key` -> processes of that executable (or context) that showed the token."""
    document_frequency: dict[str, int]
    """``"attribute token"`` -> training processes (any executable) that showed it."""
    escape: dict[str, float]
    """:func:`escape_key` -> surprise of a token new for that executable and attribute."""
    global_escape: dict[str, float]
    """Attribute -> surprise of a token no training process showed."""
    new_executable: float
    """Surprise of an executable no training process ran."""
    global_weight: float
    top_tokens: int
    threshold: float
    """On the score scale; a process alerts at score / threshold >= 1."""
    metadata: dict[str, Any] = field(default_factory=dict)

    def subject(self, profile: Profile) -> str:
        """Whose habits judge a profile: its executable in its parent's context when training
        saw that context, else its executable."""
        context = profile.context
        return context if context in self.executables else profile.exe

    def surprise(self, subject: str, attribute: str, token: str) -> float:
        """What one token costs a process judged by ``subject`` (:meth:`subject`); 0 when that
        subject showed it in training. For ``exe`` tokens the subject is not used."""
        if attribute == "exe":
            return 0.0 if token in self.executables else self.new_executable
        exe = subject
        runs = self.executables.get(exe, 0)
        if runs and known_key(exe, attribute, token) in self.known:
            return 0.0
        value = self.escape.get(escape_key(exe, attribute))
        if value is None:
            value = math.log(runs + 2.0)
        if f"{attribute} {token}" not in self.document_frequency:
            value += self.global_weight * self.global_escape.get(attribute, 0.0)
        return value


@dataclass(frozen=True, slots=True)
class Scored:
    """One profile's score. ``ratio`` is score / threshold (>= 1: anomalous)."""

    score: float
    ratio: float
    surprises: tuple[tuple[float, str, str], ...]
    """The most surprising (surprise, attribute, token), highest first."""

    @property
    def normalized(self) -> float:
        """The score (kept under its format-1 name)."""
        return self.score

    def signature(self, profile: Profile, *, tokens: int) -> str:
        """What makes this score: the context and its top surprising tokens. Processes with
        one signature are one behaviour (a benign loop, or one attack step repeated)."""
        top = sorted(f"{attribute} {token}" for _, attribute, token in self.surprises[:tokens])
        return KEY_SEPARATOR.join([profile.context, *top])


class Scorer:
    """Scores profiles with one model, incrementally (only tokens new since the last call)."""

    def __init__(self, model: AnomalyModel) -> None:
        self.model = model

    def score(self, profiles: Sequence[Profile]) -> list[Scored]:
        """Score a batch of profiles (updates each profile's scorer state)."""
        return [self.score_one(profile) for profile in profiles]

    def score_one(self, profile: Profile) -> Scored:
        model = self.model
        if not profile.exe:
            return Scored(score=0.0, ratio=0.0, surprises=())
        subject = model.subject(profile)
        done = profile.scored
        surprises = profile.surprises
        grew = False
        for attribute in ATTRIBUTES:
            tokens = profile.tokens[attribute]
            start = done.get(attribute, 0)
            if start >= len(tokens):
                continue
            for token in itertools.islice(tokens, start, None):
                value = model.surprise(subject, attribute, token)
                if value > 0.0:
                    surprises.append((value, attribute, token))
                    grew = True
            done[attribute] = len(tokens)
        if grew:
            surprises.sort(key=lambda item: (-item[0], item[1], item[2]))
            del surprises[KEPT_SURPRISES:]
        total = sum(item[0] for item in surprises[: model.top_tokens])
        return Scored(score=total, ratio=total / model.threshold, surprises=tuple(surprises))
