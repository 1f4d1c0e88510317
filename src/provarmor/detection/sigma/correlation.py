"""Sigma correlation rules (specification v2) evaluated on a stream of rule hits.

Supported types: ``event_count``, ``value_count``, ``temporal`` and ``temporal_ordered``, with
``group-by`` (plus field ``aliases``), ``timespan`` and a condition of ``gt``/``gte``/``lt``/
``lte``/``eq``/``neq`` or a range (``gt: 10`` with ``lte: 100``). Chained correlations (a
correlation over another one) work: a firing is itself a hit.

Streaming semantics (the specification leaves them to the back end):

* a condition that more hits can only make true (``gt``/``gte``) is checked on a sliding
  window ending at each hit; when it holds the correlation fires and the group starts over;
* any other condition (an upper bound, ``eq``, ``neq``) needs the whole window: windows are
  tumbling, opened by a group's first hit and judged once ``timespan`` has passed (by the
  stream's clock, :meth:`CorrelationEngine.advance`) or at :meth:`CorrelationEngine.flush`.

State is bounded: per correlation at most ``max_groups`` groups (the least recently used is
evicted and counted in :attr:`CorrelationEngine.evictions`), per group only the hits the
condition needs; groups idle for longer than ``timespan`` expire.

The module is one unit (about 500 lines): the per-type group states, the per-rule group
table and the engine share the window semantics above and change together.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from provarmor.detection.sigma.compiler import RuleInfo


class CorrelationKind(StrEnum):
    EVENT_COUNT = "event_count"
    VALUE_COUNT = "value_count"
    TEMPORAL = "temporal"
    TEMPORAL_ORDERED = "temporal_ordered"


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
    "neq": operator.ne,
}


@dataclass(frozen=True, slots=True)
class CountCondition:
    """All of ``bounds`` (operator, number) must hold for a count."""

    bounds: tuple[tuple[str, float], ...]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object]) -> CountCondition:
        """From a correlation ``condition`` mapping (``field`` is ignored here)."""
        bounds: list[tuple[str, float]] = []
        for key, value in mapping.items():
            if key == "field":
                continue
            if key not in _OPERATORS:
                raise ValueError(f"unknown condition operator '{key}'")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"condition '{key}' needs a number, not {value!r}")
            bounds.append((key, float(value)))
        if not bounds:
            raise ValueError("condition names no operator")
        return cls(tuple(bounds))

    def holds(self, count: int) -> bool:
        return all(_OPERATORS[op](count, limit) for op, limit in self.bounds)

    @property
    def monotone(self) -> bool:
        """True when more hits can only keep the condition true (lower bounds only)."""
        return all(op in ("gt", "gte") for op, _ in self.bounds)

    @property
    def needed(self) -> int:
        """The least count that satisfies a monotone condition."""
        least = 0
        for op, limit in self.bounds:
            least = max(least, int(limit) + 1 if op == "gt" else -int(-limit // 1))
        return max(least, 1)

    @property
    def cap(self) -> int:
        """Counting past this cannot change the outcome of a non-monotone condition."""
        return int(max(limit for _, limit in self.bounds)) + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class CorrelationSpec:
    info: RuleInfo
    kind: CorrelationKind
    rules: tuple[str, ...]
    """Keys of the rules (or correlations) it correlates, in the rule's order."""
    group_by: tuple[str, ...] = ()
    aliases: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """alias -> rule key -> field name in that rule's hits."""
    timespan_ns: int
    condition: CountCondition
    value_field: str | None = None


@dataclass(frozen=True, slots=True)
class GroupValues:
    """A correlation hit's field values: its group-by fields (lower-case names)."""

    values: Mapping[str, str | None]

    def __call__(self, name: str) -> str | None:
        return self.values.get(name.lower())


NO_VALUES = GroupValues({})
NEVER = 1 << 80
"""A stream time later than any (nanoseconds since the epoch)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """One match of a rule or a correlation, as the correlations above it see it."""

    rule_key: str
    timestamp: int
    first_timestamp: int
    host_id: str
    event_ids: tuple[str, ...]
    process_entity_ids: tuple[str, ...] = ()
    file_paths: tuple[str, ...] = ()
    remote_endpoints: tuple[str, ...] = ()
    count: int = 1
    value: Callable[[str], str | None] = field(default=NO_VALUES, compare=False)
    """The value of a field (Sigma name) in the matched event or, for a correlation, of its
    group-by fields (an object, not a closure: hits in open windows are checkpointed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CorrelationLimits:
    max_groups: int = 10_000
    """Groups kept per correlation; beyond, the least recently used is evicted."""
    max_kept_hits: int = 64
    """Hits kept per tumbling window to describe its alert (all are counted)."""
    per_host: bool = True
    """Never correlate hits from different hosts (as if ``host.id`` were in ``group-by``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Firing:
    """A correlation whose condition held, with the hits that made it."""

    spec: CorrelationSpec
    hits: tuple[Hit, ...]
    group: tuple[str, ...]
    """The host id ("" unless correlating per host) and the group-by values."""
    count: int
    """The count the condition judged (events, distinct values or rules)."""
    events: int
    """How many events the firing stands for."""


class _Correlation:
    """The groups of one correlation rule."""

    def __init__(self, spec: CorrelationSpec, limits: CorrelationLimits) -> None:
        self.spec = spec
        self.limits = limits
        self.sliding = spec.condition.monotone
        self.groups: OrderedDict[tuple[str, ...], _Group] = OrderedDict()
        self.evictions = 0
        self.expired = 0

    def group_of(self, hit: Hit) -> tuple[str, ...]:
        names = []
        for name in self.spec.group_by:
            field_name = self.spec.aliases.get(name, {}).get(hit.rule_key, name)
            names.append(hit.value(field_name) or "")
        return (hit.host_id if self.limits.per_host else "", *names)

    def observe(self, hit: Hit) -> list[Firing]:
        firings = self.advance(hit.timestamp)
        key = self.group_of(hit)
        group = self.groups.get(key)
        if group is None:
            group = _new_group(self.spec, self.limits, start=hit.timestamp)
            self.groups[key] = group
            if len(self.groups) > self.limits.max_groups:
                self.groups.popitem(last=False)
                self.evictions += 1
        elif self.sliding:
            self.groups.move_to_end(key)
        count = group.add(hit)
        if self.sliding and count is not None:
            del self.groups[key]
            firings.append(self._firing(key, group, count=count))
        return firings

    def advance(self, now: int) -> list[Firing]:
        """Expire idle sliding groups; judge tumbling windows that ended before ``now``."""
        span = self.spec.timespan_ns
        firings: list[Firing] = []
        while self.groups:
            key, group = next(iter(self.groups.items()))
            if group.last_seen(self.sliding) + span >= now:
                break
            del self.groups[key]
            self.expired += 1
            if not self.sliding:
                firings.extend(self._judge(key, group))
        return firings

    def due(self) -> int:
        """The stream time after which :meth:`advance` has something to do: its oldest
        group's end (:data:`NEVER` without groups)."""
        for group in self.groups.values():
            return group.last_seen(self.sliding) + self.spec.timespan_ns
        return NEVER

    def flush(self) -> list[Firing]:
        firings: list[Firing] = []
        if not self.sliding:
            for key, group in self.groups.items():
                firings.extend(self._judge(key, group))
        self.groups.clear()
        return firings

    def _firing(self, key: tuple[str, ...], group: _Group, *, count: int) -> Firing:
        return Firing(
            spec=self.spec, hits=group.hits(), group=key, count=count, events=group.events()
        )

    def _judge(self, key: tuple[str, ...], group: _Group) -> list[Firing]:
        count = group.count()
        if self.spec.condition.holds(count):
            return [self._firing(key, group, count=count)]
        return []


class _Group(ABC):
    """Per-group state. ``add`` returns the count when a sliding window fires."""

    def __init__(self, spec: CorrelationSpec, limits: CorrelationLimits, *, start: int) -> None:
        self.spec = spec
        self.limits = limits
        self.start = start
        self.last = start

    def last_seen(self, sliding: bool) -> int:
        return self.last if sliding else self.start

    @abstractmethod
    def add(self, hit: Hit) -> int | None:
        """Implemented by each kind of group."""

    @abstractmethod
    def count(self) -> int:
        """Implemented by each kind of group."""

    @abstractmethod
    def hits(self) -> tuple[Hit, ...]:
        """Implemented by each kind of group."""

    def events(self) -> int:
        return sum(hit.count for hit in self.hits())


class _SlidingEvents(_Group):
    """event_count with a lower bound: the last ``needed`` hits within the timespan."""

    def __init__(self, spec: CorrelationSpec, limits: CorrelationLimits, *, start: int) -> None:
        super().__init__(spec, limits, start=start)
        self.window: deque[Hit] = deque(maxlen=spec.condition.needed)

    def add(self, hit: Hit) -> int | None:
        self.last = max(self.last, hit.timestamp)
        self.window.append(hit)
        oldest = self.last - self.spec.timespan_ns
        while self.window and self.window[0].timestamp < oldest:
            self.window.popleft()
        total = sum(h.count for h in self.window)
        return total if self.spec.condition.holds(total) else None

    def count(self) -> int:
        return sum(h.count for h in self.window)

    def hits(self) -> tuple[Hit, ...]:
        return tuple(self.window)


class _SlidingValues(_Group):
    """value_count with a lower bound: the latest hit per distinct value in the timespan."""

    def __init__(self, spec: CorrelationSpec, limits: CorrelationLimits, *, start: int) -> None:
        super().__init__(spec, limits, start=start)
        self.values: OrderedDict[str, Hit] = OrderedDict()

    def add(self, hit: Hit) -> int | None:
        value = hit.value(self.spec.value_field or "")
        if value is None:
            return None
        self.last = max(self.last, hit.timestamp)
        self.values[value.lower()] = hit
        self.values.move_to_end(value.lower())
        oldest = self.last - self.spec.timespan_ns
        while self.values and next(iter(self.values.values())).timestamp < oldest:
            self.values.popitem(last=False)
        while len(self.values) > self.spec.condition.needed:
            self.values.popitem(last=False)
        count = len(self.values)
        return count if self.spec.condition.holds(count) else None

    def count(self) -> int:
        return len(self.values)

    def hits(self) -> tuple[Hit, ...]:
        return tuple(self.values.values())


class _Tumbling(_Group):
    """A fixed window [start, start + timespan] judged when it ends (non-monotone)."""

    def __init__(self, spec: CorrelationSpec, limits: CorrelationLimits, *, start: int) -> None:
        super().__init__(spec, limits, start=start)
        self.seen = 0
        self.values: set[str] = set()
        self.kept: list[Hit] = []

    def add(self, hit: Hit) -> int | None:
        self.last = max(self.last, hit.timestamp)
        if self.spec.kind is CorrelationKind.VALUE_COUNT:
            value = hit.value(self.spec.value_field or "")
            if value is None:
                return None
            if len(self.values) < self.spec.condition.cap:
                self.values.add(value.lower())
        self.seen += hit.count
        if len(self.kept) < self.limits.max_kept_hits:
            self.kept.append(hit)
        return None

    def count(self) -> int:
        if self.spec.kind is CorrelationKind.VALUE_COUNT:
            return len(self.values)
        return self.seen

    def hits(self) -> tuple[Hit, ...]:
        return tuple(self.kept)

    def events(self) -> int:
        return self.seen


class _Temporal(_Group):
    """temporal: the latest hit of each referenced rule within the timespan."""

    def __init__(self, spec: CorrelationSpec, limits: CorrelationLimits, *, start: int) -> None:
        super().__init__(spec, limits, start=start)
        self.latest: dict[str, Hit] = {}

    def add(self, hit: Hit) -> int | None:
        self.last = max(self.last, hit.timestamp)
        self.latest[hit.rule_key] = hit
        oldest = self.last - self.spec.timespan_ns
        self.latest = {k: h for k, h in self.latest.items() if h.timestamp >= oldest}
        count = len(self.latest)
        return count if self.spec.condition.holds(count) else None

    def count(self) -> int:
        return len(self.latest)

    def hits(self) -> tuple[Hit, ...]:
        return tuple(sorted(self.latest.values(), key=lambda h: h.timestamp))


class _TemporalOrdered(_Group):
    """temporal_ordered: ``chains[k]`` is the latest-starting run of the first k rules in order."""

    def __init__(self, spec: CorrelationSpec, limits: CorrelationLimits, *, start: int) -> None:
        super().__init__(spec, limits, start=start)
        self.chains: list[tuple[Hit, ...] | None] = [None] * (len(spec.rules) + 1)
        self.reached = 0

    def add(self, hit: Hit) -> int | None:
        self.last = max(self.last, hit.timestamp)
        oldest = hit.timestamp - self.spec.timespan_ns
        rules = self.spec.rules
        for position in reversed(range(len(rules))):
            if rules[position] != hit.rule_key:
                continue
            if position == 0:
                self.chains[1] = (hit,)
                continue
            chain = self.chains[position]
            if chain is not None and chain[0].timestamp >= oldest:
                self.chains[position + 1] = (*chain, hit)
        self.reached = max(
            (k for k, chain in enumerate(self.chains) if chain and chain[0].timestamp >= oldest),
            default=0,
        )
        return self.reached if self.spec.condition.holds(self.reached) else None

    def count(self) -> int:
        return self.reached

    def hits(self) -> tuple[Hit, ...]:
        return self.chains[self.reached] or ()


def _new_group(spec: CorrelationSpec, limits: CorrelationLimits, *, start: int) -> _Group:
    if spec.kind is CorrelationKind.TEMPORAL:
        return _Temporal(spec, limits, start=start)
    if spec.kind is CorrelationKind.TEMPORAL_ORDERED:
        return _TemporalOrdered(spec, limits, start=start)
    if not spec.condition.monotone:
        return _Tumbling(spec, limits, start=start)
    if spec.kind is CorrelationKind.VALUE_COUNT:
        return _SlidingValues(spec, limits, start=start)
    return _SlidingEvents(spec, limits, start=start)


class CorrelationEngine:
    """Feeds rule hits to the correlations that reference them; returns their firings.

    A firing is also a hit for correlations that reference the firing one (chaining).
    Time only moves forward: the clock is the largest timestamp seen.
    """

    def __init__(
        self, specs: Sequence[CorrelationSpec], *, limits: CorrelationLimits | None = None
    ) -> None:
        self._limits = limits or CorrelationLimits()
        self._correlations = [_Correlation(spec, self._limits) for spec in specs]
        self._by_rule: dict[str, list[_Correlation]] = {}
        for correlation in self._correlations:
            for key in dict.fromkeys(correlation.spec.rules):
                self._by_rule.setdefault(key, []).append(correlation)
        self._now = 0
        self._due = NEVER
        """No window ends before this stream time (at most the earliest :meth:`_Correlation.
        due`): most events move the clock without ending any, and skip the correlations."""

    @property
    def referenced(self) -> frozenset[str]:
        """Keys of the rules and correlations some correlation listens to."""
        return frozenset(self._by_rule)

    @property
    def evictions(self) -> int:
        return sum(c.evictions for c in self._correlations)

    @property
    def expired(self) -> int:
        return sum(c.expired for c in self._correlations)

    @property
    def open_groups(self) -> int:
        return sum(len(c.groups) for c in self._correlations)

    def observe(self, hit: Hit) -> list[Firing]:
        firings = self.advance(hit.timestamp)
        pending = [hit]
        while pending:
            current = pending.pop()
            for correlation in self._by_rule.get(current.rule_key, ()):
                for firing in correlation.observe(current):
                    firings.append(firing)
                    pending.append(firing_hit(firing))
                self._due = min(self._due, correlation.due())
        return firings

    def advance(self, now: int) -> list[Firing]:
        """Move the clock to ``now`` (if later) and judge the windows that ended."""
        if now <= self._now:
            return []
        self._now = now
        if now <= self._due:
            return []
        ended: list[Firing] = []
        due = NEVER
        for correlation in self._correlations:
            if correlation.groups:
                ended.extend(correlation.advance(now))
                due = min(due, correlation.due())
        self._due = due
        return self._chain(ended) if ended else ended

    def flush(self) -> list[Firing]:
        """End of stream: judge every open window and forget all state."""
        return self._chain(f for c in self._correlations for f in c.flush())

    def _chain(self, firings: Iterable[Firing]) -> list[Firing]:
        done = list(firings)
        chained: list[Firing] = []
        for firing in done:
            chained.extend(self.observe(firing_hit(firing)))
        return done + chained


def firing_hit(firing: Firing) -> Hit:
    """A correlation's firing as a hit for the correlations above it."""
    hits = firing.hits
    spec = firing.spec
    values = dict(zip((name.lower() for name in spec.group_by), firing.group[1:], strict=True))
    last = max((h.timestamp for h in hits), default=0)
    return Hit(
        rule_key=spec.info.key,
        timestamp=last,
        first_timestamp=min((h.first_timestamp for h in hits), default=last),
        host_id=hits[-1].host_id if hits else "",
        event_ids=_union(h.event_ids for h in hits),
        process_entity_ids=_union(h.process_entity_ids for h in hits),
        file_paths=_union(h.file_paths for h in hits),
        remote_endpoints=_union(h.remote_endpoints for h in hits),
        count=firing.events,
        value=GroupValues(values),
    )


MAX_LISTED = 64
"""At most this many event ids (and entities of each kind) are listed on one alert."""


def _union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item, None)
            if len(seen) >= MAX_LISTED:
                return tuple(seen)
    return tuple(seen)
