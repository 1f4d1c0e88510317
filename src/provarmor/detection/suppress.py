"""Exceptions, suppression and deduplication of alerts, between a detector and the outputs.

A :class:`Suppression` is an operator's exception: "do not alert rule R when ...". Its
conditions name the host, the acting process's executable, an ancestor's executable (the
process lineage: ``/usr/bin/borg`` anywhere above the process), a file path the alert is about,
a remote endpoint it is about, and the acting user. Values are shell-style globs (``fnmatch``;
``*`` also matches ``/``). The values of one condition are alternatives (OR), except
``lineage``: an ordered chain of ancestors that must all be found going up from the process,
nearest first, in that order (other processes may sit between them). The conditions of one
suppression must all hold (AND), and a suppression without conditions silences its rules
everywhere. ``rules`` lists rule ids or exact titles, or ``*`` for every rule. A condition
that cannot be judged (the process was never seen) does not hold: an alert is only suppressed
on what is known. The manager swaps a detector's suppressions while it runs
(:meth:`SuppressingDetector.replace_suppressions`: analysts' exceptions apply to the next
event) and lets the lineage table recall processes it has not seen from the host's graph.

Deduplication folds repeated alerts of one rule about the same process and the same object (its
first file, else its first remote endpoint) into one alert: the first alert opens a window of
``window_ns`` (stream time, the events' clock), alerts of the same key inside it add to its
``count`` and event ids (capped), and the merged alert leaves when the window has passed or at
:meth:`SuppressingDetector.flush`. So an alert is at most ``window_ns`` late; a window of 0
passes every alert through at once.

Everything dropped or folded is counted (:class:`FilterStats`): per suppression, per rule, and
duplicates per rule. :class:`SuppressingDetector` wraps any detector; it watches every event
to learn each process's executable, user and parent, in a bounded table (oldest first out,
counted). Nothing here reads files: :func:`parse_suppressions` takes the YAML text.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import msgspec
import yaml

from provarmor.detection.engine import Detector, Signal
from provarmor.model.actions import Action
from provarmor.model.alert import Alert
from provarmor.model.errors import ConfigError
from provarmor.model.event import Event

MAX_ANCESTORS = 32
"""How far up the lineage an ``ancestor`` condition looks."""
CONDITIONS = ("host", "executable", "ancestor", "lineage", "path", "endpoint", "user")


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppression:
    """Do not alert ``rules`` when every given condition holds (see the module docstring)."""

    name: str
    rules: tuple[str, ...]
    hosts: tuple[str, ...] = ()
    executables: tuple[str, ...] = ()
    ancestors: tuple[str, ...] = ()
    lineage: tuple[str, ...] = ()
    """Ancestors' executables, nearest first, that must all be above the process in order."""
    paths: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    reason: str = ""

    def applies_to(self, alert: Alert) -> bool:
        return "*" in self.rules or alert.rule_id in self.rules or alert.rule_title in self.rules


@dataclass(slots=True)
class ProcessFacts:
    """What the lineage table knows about one process."""

    executable: str = ""
    user_name: str = ""
    user_id: str = ""
    parent: str = ""
    """The parent's entity id; empty when unknown."""
    seen: bool = False
    """Learnt from the process's own events (not only named as a parent by a child)."""


Recall = Callable[[str], ProcessFacts | None]
"""Where a lineage table looks up a process it has not seen (or has evicted): a persistent
graph, so that processes started before a restart of the analysis are still judged."""


class LineageTable:
    """Executable, user and parent of each process seen, by entity id (bounded, LRU)."""

    def __init__(self, *, capacity: int = 65536, recall: Recall | None = None) -> None:
        self._facts: OrderedDict[str, ProcessFacts] = OrderedDict()
        self._hosts: dict[str, str] = {}
        self.capacity = capacity
        self.evicted = 0
        self._recall = recall
        self.recalled = 0
        """Processes looked up through ``recall``."""

    def observe(self, event: Event) -> None:
        """Learn from one event; cheap for the events of known processes."""
        process = event.process
        entity = process.entity_id
        if not entity:
            return
        action = event.event.action
        facts = self._facts.get(entity)
        if facts is not None and facts.seen and action not in _IDENTITY_ACTIONS:
            return
        if event.host.name and event.host.id not in self._hosts:
            self._hosts[event.host.id] = event.host.name
        if facts is None:
            facts = self._insert(entity, ProcessFacts())
        facts.seen = True
        facts.executable = process.executable or facts.executable
        if process.user is not None:
            facts.user_id = process.user.id
            facts.user_name = process.user.name or ("root" if process.user.id == "0" else "")
        parent = process.parent
        if parent is not None and parent.entity_id and not facts.parent:
            # the first parent is the creator; a later one is a re-parenting (to init or a
            # subreaper after the creator exited), as the graph builder keeps it too
            facts.parent = parent.entity_id
            known = self.facts(parent.entity_id)
            if known is None:
                self._insert(parent.entity_id, ProcessFacts(executable=parent.executable))

    def _insert(self, entity: str, facts: ProcessFacts) -> ProcessFacts:
        self._facts[entity] = facts
        if len(self._facts) > self.capacity:
            self._facts.popitem(last=False)
            self.evicted += 1
        return facts

    def facts(self, entity: str) -> ProcessFacts | None:
        found = self._facts.get(entity)
        if found is None and entity and self._recall is not None:
            found = self._recall(entity)
            if found is not None:
                self.recalled += 1
                self._insert(entity, found)
        return found

    def host_name(self, host_id: str) -> str:
        return self._hosts.get(host_id, "")

    def ancestors(self, entity: str) -> list[str]:
        """Executables above ``entity``, nearest first (cycles and depth are bounded)."""
        found: list[str] = []
        seen = {entity}
        facts = self.facts(entity)
        while facts is not None and facts.parent and len(found) < MAX_ANCESTORS:
            if facts.parent in seen:
                break
            seen.add(facts.parent)
            facts = self.facts(facts.parent)
            if facts is not None and facts.executable:
                found.append(facts.executable)
        return found


_IDENTITY_ACTIONS = frozenset({Action.EXEC, Action.FORK, Action.SETUID, Action.SETGID})


def _any(patterns: tuple[str, ...], values: Sequence[str]) -> bool:
    return any(fnmatchcase(value, pattern) for pattern in patterns for value in values if value)


def _in_order(patterns: tuple[str, ...], ancestors: Sequence[str]) -> bool:
    """Each pattern matches a later ancestor than the one before it."""
    remaining = iter(ancestors)
    return all(any(fnmatchcase(value, pattern) for value in remaining) for pattern in patterns)


def suppresses(rule: Suppression, alert: Alert, lineage: LineageTable) -> bool:
    """Whether ``rule`` silences ``alert``, judged on what ``lineage`` knows."""
    if not rule.applies_to(alert):
        return False
    if rule.hosts and not _any(rule.hosts, (alert.host_id, lineage.host_name(alert.host_id))):
        return False
    if rule.paths and not _any(rule.paths, alert.file_paths):
        return False
    if rule.endpoints and not _any(rule.endpoints, alert.remote_endpoints):
        return False
    if not (rule.executables or rule.ancestors or rule.lineage or rule.users):
        return True
    actor = alert.process_entity_ids[0] if alert.process_entity_ids else ""
    facts = lineage.facts(actor)
    if facts is None:
        return False
    if rule.executables and not _any(rule.executables, (facts.executable,)):
        return False
    if rule.users and not _any(rule.users, (facts.user_name, facts.user_id)):
        return False
    if not (rule.ancestors or rule.lineage):
        return True
    above = lineage.ancestors(actor)
    if rule.ancestors and not _any(rule.ancestors, above):
        return False
    return _in_order(rule.lineage, above)


@dataclass(slots=True)
class FilterStats:
    """What the filter dropped or folded."""

    suppressed: Counter[str] = field(default_factory=Counter)
    """Suppression name -> alerts it dropped."""
    suppressed_by_rule: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    """Rule id -> alerts folded into an earlier alert of the same key."""
    passed: int = 0
    """Alerts that left the filter (merged alerts count once)."""


@dataclass(slots=True)
class _Group:
    alert: Alert
    closes: int
    event_ids: list[str]
    count: int
    generation: int


def dedup_key(alert: Alert) -> tuple[str, str, str, str]:
    """(rule, host, acting process, object): what makes two alerts repeats of each other."""
    actor = alert.process_entity_ids[0] if alert.process_entity_ids else ""
    target = alert.file_paths[0] if alert.file_paths else ""
    if not target and alert.remote_endpoints:
        target = alert.remote_endpoints[0]
    return alert.rule_id, alert.host_id, actor, target


class Deduplicator:
    """Folds alerts of one key within ``window_ns`` of the first into one alert."""

    def __init__(self, *, window_ns: int, max_event_ids: int = 20, stats: FilterStats) -> None:
        if window_ns < 0:
            raise ConfigError("deduplication window must not be negative", location="window")
        self.window_ns = window_ns
        self.max_event_ids = max_event_ids
        self._stats = stats
        self._groups: dict[tuple[str, str, str, str], _Group] = {}
        self._closing: list[tuple[int, int, tuple[str, str, str, str]]] = []
        self._generation = 0

    @property
    def pending(self) -> int:
        return len(self._groups)

    def add(self, alert: Alert) -> list[Alert]:
        """Take one alert; returns the alerts whose windows it closed (or itself, unwindowed)."""
        if self.window_ns == 0:
            return [alert]
        key = dedup_key(alert)
        group = self._groups.get(key)
        if group is not None and alert.first_timestamp <= group.closes:
            self._merge(group, alert)
            return []
        released = [self._close(key)] if group is not None else []
        self._generation += 1
        closes = alert.first_timestamp + self.window_ns
        self._groups[key] = _Group(
            alert,
            closes,
            list(alert.event_ids[: self.max_event_ids]),
            alert.count,
            self._generation,
        )
        heapq.heappush(self._closing, (closes, self._generation, key))
        return released

    def advance(self, now: int) -> list[Alert]:
        """Stream time is ``now``: release the groups whose window has passed."""
        released: list[Alert] = []
        while self._closing and self._closing[0][0] < now:
            _, generation, key = heapq.heappop(self._closing)
            group = self._groups.get(key)
            if group is not None and group.generation == generation:
                released.append(self._close(key))
        return released

    def flush(self) -> list[Alert]:
        released = [self._close(key) for key in list(self._groups)]
        self._closing.clear()
        return released

    def _merge(self, group: _Group, alert: Alert) -> None:
        self._stats.duplicates[alert.rule_id] += 1
        group.count += alert.count
        room = self.max_event_ids - len(group.event_ids)
        group.event_ids.extend(alert.event_ids[: max(room, 0)])
        first = group.alert
        group.alert = msgspec.structs.replace(
            first,
            first_timestamp=min(first.first_timestamp, alert.first_timestamp),
            last_timestamp=max(first.last_timestamp, alert.last_timestamp),
        )

    def _close(self, key: tuple[str, str, str, str]) -> Alert:
        group = self._groups.pop(key)
        return msgspec.structs.replace(
            group.alert, count=group.count, event_ids=tuple(group.event_ids)
        )


class SuppressingDetector:
    """A :class:`~provarmor.detection.engine.Detector` that applies suppressions and
    deduplication to the alerts of the detector it wraps."""

    def __init__(
        self,
        inner: Detector,
        *,
        suppressions: Sequence[Suppression] = (),
        window_ns: int = 0,
        max_processes: int = 65536,
        recall: Recall | None = None,
    ) -> None:
        self.name = inner.name
        self._inner = inner
        self._suppressions = tuple(suppressions)
        self.stats = FilterStats()
        self.lineage = LineageTable(capacity=max_processes, recall=recall)
        self._dedup = Deduplicator(window_ns=window_ns, stats=self.stats)
        self._now = 0

    @property
    def suppressions(self) -> tuple[Suppression, ...]:
        return self._suppressions

    def replace_suppressions(self, suppressions: Sequence[Suppression]) -> None:
        """Use ``suppressions`` from the next alert on; the lineage learnt so far is kept, so
        a new exception judges processes that started before it."""
        self._suppressions = tuple(suppressions)

    def on_event(self, event: Event) -> list[Signal]:
        self.lineage.observe(event)
        if event.timestamp > self._now:
            self._now = event.timestamp
        released = self._dedup.advance(self._now)
        found = self._inner.on_event(event)
        if found:
            for alert in found:
                released.extend(self._take(alert))
        if released:
            self.stats.passed += len(released)
        return released

    def flush(self) -> list[Signal]:
        released: list[Alert] = []
        for alert in self._inner.flush():
            released.extend(self._take(alert))
        released.extend(self._dedup.flush())
        self.stats.passed += len(released)
        return released

    def _take(self, alert: Alert) -> list[Alert]:
        for rule in self._suppressions:
            if suppresses(rule, alert, self.lineage):
                self.stats.suppressed[rule.name] += 1
                self.stats.suppressed_by_rule[alert.rule_id] += 1
                return []
        return self._dedup.add(alert)


# -- the YAML form ---------------------------------------------------------------------------


def parse_suppressions(text: str, *, source: str) -> tuple[Suppression, ...]:
    """Suppressions from YAML text (``source`` names it in errors); raises ConfigError.

    The text is a mapping with a ``suppressions`` list (or the list itself); each entry has a
    ``name``, ``rule`` or ``rules`` (ids, titles or ``*``), optional conditions ``host``,
    ``executable``, ``ancestor``, ``lineage``, ``path``, ``endpoint``, ``user`` (a string or a
    list of globs) and a ``reason``. :func:`dump_suppressions` writes this form.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(f"bad YAML: {error}", location=where) from None
    if isinstance(document, dict):
        unknown = set(document) - {"suppressions"}
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}", location=source)
        document = document.get("suppressions") or []
    if document is None:
        return ()
    if not isinstance(document, list):
        raise ConfigError("expected a list of suppressions", location=source)
    entries = [_entry(item, where=f"{source}:suppressions[{i}]") for i, item in enumerate(document)]
    names = Counter(entry.name for entry in entries)
    repeated = sorted(name for name, count in names.items() if count > 1)
    if repeated:
        raise ConfigError(f"suppression names must be unique: {repeated}", location=source)
    return tuple(entries)


_KEYS = {"name", "rule", "rules", "reason", *CONDITIONS}


def _entry(item: object, *, where: str) -> Suppression:
    if not isinstance(item, dict):
        raise ConfigError("a suppression must be a mapping", location=where)
    unknown = set(item) - _KEYS
    if unknown:
        raise ConfigError(f"unknown keys {sorted(map(str, unknown))}", location=where)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a suppression needs a name", location=f"{where}.name")
    if "rule" in item and "rules" in item:
        raise ConfigError("give rule or rules, not both", location=where)
    rules = _strings(item.get("rules", item.get("rule")), where=f"{where}.rules")
    if not rules:
        raise ConfigError("a suppression needs its rules (ids, titles or '*')", location=where)
    values = {key: _strings(item.get(key), where=f"{where}.{key}") for key in CONDITIONS}
    reason = item.get("reason", "")
    return Suppression(
        name=name.strip(),
        rules=rules,
        hosts=values["host"],
        executables=values["executable"],
        ancestors=values["ancestor"],
        lineage=values["lineage"],
        paths=values["path"],
        endpoints=values["endpoint"],
        users=values["user"],
        reason=str(reason),
    )


def dump_suppressions(suppressions: Sequence[Suppression], *, comment: str = "") -> str:
    """The YAML that :func:`parse_suppressions` reads back as the same suppressions
    (``comment`` goes on top, one ``#`` line per line)."""
    entries: list[dict[str, object]] = []
    for rule in suppressions:
        entry: dict[str, object] = {"name": rule.name, "rules": list(rule.rules)}
        for key, values in zip(CONDITIONS, _conditions(rule), strict=True):
            if values:
                entry[key] = list(values)
        if rule.reason:
            entry["reason"] = rule.reason
        entries.append(entry)
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    body = yaml.safe_dump(
        {"suppressions": entries}, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return header + body


def _conditions(rule: Suppression) -> tuple[tuple[str, ...], ...]:
    """The condition values in the order of :data:`CONDITIONS`."""
    return (
        rule.hosts,
        rule.executables,
        rule.ancestors,
        rule.lineage,
        rule.paths,
        rule.endpoints,
        rule.users,
    )


def _strings(value: object, *, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str | int) and not isinstance(item, bool) for item in items):
        raise ConfigError("expected a string or a list of strings", location=where)
    texts = tuple(str(item).strip() for item in items)
    if any(not text for text in texts):
        raise ConfigError("empty pattern", location=where)
    return texts
