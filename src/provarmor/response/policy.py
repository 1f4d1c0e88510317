"""The automatic response policy: which incidents get which actions, in which mode.

A policy is YAML::

    version: 1
    mode: dry-run            # off | dry-run (default: record what would be done) | enforce
    rate_limit:              # per host: at most `actions` executions in `seconds`
      actions: 20
      seconds: 3600
    host_groups:             # group -> host ids or host names
      web: [web-1, 3f2a...]
    rules:                   # every matching rule adds its actions
      - name: contain implants
        severity: high       # at least this level (low, medium, high, critical)
        techniques: [T1059]  # any of these (T1059 also matches T1059.004)
        rule_ids: [...]      # any of the incident's signals came from one of these rules
        lineage: [downloaded] # any of its signals came from a process in one of these
                             # lineage contexts (not lowered by it; graph/lineage.py kinds)
        host_groups: [web]   # the host is in any of these groups
        actions: [suspend, kill, quarantine, revert_file, block]
        isolate_release_seconds: 600   # isolation ends by itself (0: by hand)

Conditions left out match everything. Only actions that contain something may appear
(undo actions are for people). :func:`parse_policy` is pure (text in, :class:`Policy` out)
and raises only :class:`~provarmor.model.errors.ParseError`, located ``file:line``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from enum import StrEnum
from importlib import resources
from pathlib import Path

import yaml
from msgspec import Struct
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from provarmor.graph.lineage import ContextKind
from provarmor.model.errors import ConfigError, ParseError
from provarmor.response.records import ActionKind

FORMAT_VERSION = 1
SEVERITIES = ("informational", "low", "medium", "high", "critical")
POLICY_ACTIONS = (
    ActionKind.SUSPEND,
    ActionKind.KILL,
    ActionKind.QUARANTINE,
    ActionKind.REVERT_FILE,
    ActionKind.BLOCK,
    ActionKind.ISOLATE,
    ActionKind.LOCK_USER,
)


class Mode(StrEnum):
    OFF = "off"
    DRY_RUN = "dry-run"
    ENFORCE = "enforce"


class PolicyRule(Struct, frozen=True, kw_only=True):
    name: str
    actions: tuple[ActionKind, ...]
    severity: str = "informational"
    techniques: tuple[str, ...] = ()
    rule_ids: tuple[str, ...] = ()
    lineage: tuple[str, ...] = ()
    """Lineage context kinds (:class:`~provarmor.graph.lineage.ContextKind` values): the rule
    matches an incident with a signal raised on a process in one of them, as the analysis
    judged the process when it raised the signal (a signal that context lowered does not
    count). ``downloaded``: the process ran a file that a process with network input wrote."""
    host_groups: tuple[str, ...] = ()
    isolate_release_seconds: float = 0.0

    def matches(
        self,
        *,
        severity: str,
        techniques: set[str],
        rule_ids: set[str],
        groups: set[str],
        contexts: Collection[str] = (),
    ) -> bool:
        if severity_rank(severity) < severity_rank(self.severity):
            return False
        if self.techniques and not any(
            seen == wanted or seen.startswith(wanted + ".")
            for wanted in self.techniques
            for seen in techniques
        ):
            return False
        if self.rule_ids and not rule_ids.intersection(self.rule_ids):
            return False
        if self.lineage and not any(kind in contexts for kind in self.lineage):
            return False
        return not self.host_groups or bool(groups.intersection(self.host_groups))


class RateLimit(Struct, frozen=True, kw_only=True):
    actions: int = 20
    seconds: float = 3600.0


class Policy(Struct, frozen=True, kw_only=True):
    mode: Mode = Mode.DRY_RUN
    rate_limit: RateLimit = RateLimit()
    host_groups: dict[str, tuple[str, ...]] = {}
    rules: tuple[PolicyRule, ...] = ()
    source: str = ""

    def groups_of(self, *host_names: str) -> set[str]:
        """The groups a host (by id or name) is in."""
        return {
            group
            for group, members in self.host_groups.items()
            if any(name in members for name in host_names if name)
        }


def bundled_policy() -> Path:
    """The shipped containment policy (package data): high and critical incidents, and
    medium ones with a signal from a downloaded-then-run program -> kill the signalling
    process trees (and the attack's ancestors of them), quarantine the programs the
    attack dropped and ran and revert the persistence files it wrote; mode dry-run."""
    return Path(str(resources.files("provarmor.data") / "response" / "containment.yaml"))


def severity_rank(level: str) -> int:
    return SEVERITIES.index(level) if level in SEVERITIES else 1


# -- parsing ---------------------------------------------------------------------------------


def _where(source: str, node: Node) -> str:
    return f"{source}:{node.start_mark.line + 1}"


def _mapping(node: Node, source: str, what: str) -> dict[str, tuple[Node, Node]]:
    if not isinstance(node, MappingNode):
        raise ParseError(f"{what} must be a mapping", location=_where(source, node))
    found: dict[str, tuple[Node, Node]] = {}
    for key, value in node.value:
        if not isinstance(key, ScalarNode):
            raise ParseError(f"{what}: keys must be plain words", location=_where(source, key))
        if key.value in found:
            raise ParseError(f"{what}: {key.value!r} given twice", location=_where(source, key))
        found[key.value] = (key, value)
    return found


def _reject_unknown(
    found: dict[str, tuple[Node, Node]], allowed: tuple[str, ...], source: str, what: str
) -> None:
    for name, (key, _) in found.items():
        if name not in allowed:
            raise ParseError(
                f"{what}: unknown key {name!r} (known: {', '.join(allowed)})",
                location=_where(source, key),
            )


def _text(node: Node, source: str, what: str) -> str:
    if not isinstance(node, ScalarNode) or not node.value.strip():
        raise ParseError(f"{what} must be a non-empty word", location=_where(source, node))
    return str(node.value).strip()


def _number(node: Node, source: str, what: str, *, minimum: float) -> float:
    text = _text(node, source, what)
    try:
        value = float(text)
    except ValueError:
        raise ParseError(
            f"{what} must be a number, not {text!r}", location=_where(source, node)
        ) from None
    if not value >= minimum or value == float("inf"):
        raise ParseError(f"{what} must be at least {minimum:g}", location=_where(source, node))
    return value


def _words(node: Node, source: str, what: str) -> tuple[str, ...]:
    if isinstance(node, ScalarNode):
        return (_text(node, source, what),)
    if not isinstance(node, SequenceNode):
        raise ParseError(f"{what} must be a list", location=_where(source, node))
    return tuple(_text(item, source, what) for item in node.value)


def _choice(node: Node, source: str, what: str, choices: tuple[str, ...]) -> str:
    text = _text(node, source, what)
    if text not in choices:
        raise ParseError(
            f"{what}: {text!r} is not one of {', '.join(choices)}", location=_where(source, node)
        )
    return text


_RULE_KEYS: tuple[str, ...] = (
    "name",
    "actions",
    "severity",
    "techniques",
    "rule_ids",
    "lineage",
    "host_groups",
    "isolate_release_seconds",
)


def _listed(
    node: Node, source: str, what: str, known: Collection[str], unknown: Callable[[str], str]
) -> tuple[str, ...]:
    """The words of a list whose every word must be one of ``known`` (``unknown(word)``
    says what is wrong with one that is not)."""
    words = _words(node, source, what)
    for word in words:
        if word not in known:
            raise ParseError(unknown(word), location=_where(source, node))
    return words


def _rule(node: Node, source: str, groups: dict[str, tuple[str, ...]]) -> PolicyRule:
    found = _mapping(node, source, "a rule")
    _reject_unknown(found, _RULE_KEYS, source, "a rule")
    for required in ("name", "actions"):
        if required not in found:
            raise ParseError(f"a rule needs {required!r}", location=_where(source, node))
    name = _text(found["name"][1], source, "name")
    allowed = tuple(kind.value for kind in POLICY_ACTIONS)
    names = _listed(
        found["actions"][1],
        source,
        "actions",
        allowed,
        lambda a: f"rule {name!r}: action {a!r} is not one of {', '.join(allowed)}",
    )
    values: dict[str, object] = {"name": name, "actions": tuple(ActionKind(a) for a in names)}
    if "severity" in found:
        values["severity"] = _choice(found["severity"][1], source, "severity", SEVERITIES)
    for key in ("techniques", "rule_ids"):
        if key in found:
            values[key] = _words(found[key][1], source, key)
    kinds = tuple(kind.value for kind in ContextKind)
    if "lineage" in found:
        values["lineage"] = _listed(
            found["lineage"][1],
            source,
            "lineage",
            kinds,
            lambda k: f"rule {name!r}: lineage {k!r} is not one of {', '.join(kinds)}",
        )
    if "host_groups" in found:
        values["host_groups"] = _listed(
            found["host_groups"][1],
            source,
            "host_groups",
            groups,
            lambda g: f"rule {name!r}: no host group {g!r}",
        )
    if "isolate_release_seconds" in found:
        values["isolate_release_seconds"] = _number(
            found["isolate_release_seconds"][1], source, "isolate_release_seconds", minimum=0
        )
    return PolicyRule(**values)  # type: ignore[arg-type]


def _compose(text: str, source: str) -> Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if mark is not None:
            line = mark.line + 1
        else:  # a reader error (a character YAML does not allow) knows only its position
            line = text[: getattr(exc, "position", 0)].count("\n") + 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ParseError(f"not valid YAML: {problem}", location=f"{source}:{line}") from None


def parse_policy(text: str, *, source: str = "policy") -> Policy:
    """Parse a policy file's text. ``source`` names the file in error locations."""
    root = _compose(text, source)
    if root is None:
        raise ParseError("the policy is empty", location=f"{source}:1")
    found = _mapping(root, source, "the policy")
    _reject_unknown(
        found, ("version", "mode", "rate_limit", "host_groups", "rules"), source, "the policy"
    )
    if "version" in found:
        version = _text(found["version"][1], source, "version")
        if version != str(FORMAT_VERSION):
            raise ParseError(
                f"policy version {version} (this build reads {FORMAT_VERSION})",
                location=_where(source, found["version"][1]),
            )
    mode = Mode.DRY_RUN
    if "mode" in found:
        mode = Mode(_choice(found["mode"][1], source, "mode", tuple(m.value for m in Mode)))
    limit = RateLimit()
    if "rate_limit" in found:
        limits = _mapping(found["rate_limit"][1], source, "rate_limit")
        _reject_unknown(limits, ("actions", "seconds"), source, "rate_limit")
        limit = RateLimit(
            actions=int(_number(limits["actions"][1], source, "actions", minimum=0))
            if "actions" in limits
            else limit.actions,
            seconds=_number(limits["seconds"][1], source, "seconds", minimum=1)
            if "seconds" in limits
            else limit.seconds,
        )
    groups: dict[str, tuple[str, ...]] = {}
    if "host_groups" in found:
        for group, (_, members) in _mapping(found["host_groups"][1], source, "host_groups").items():
            groups[group] = _words(members, source, f"host group {group!r}")
    rules: list[PolicyRule] = []
    if "rules" in found:
        node = found["rules"][1]
        if not isinstance(node, SequenceNode):
            raise ParseError("rules must be a list", location=_where(source, node))
        rules = [_rule(item, source, groups) for item in node.value]
    return Policy(
        mode=mode, rate_limit=limit, host_groups=groups, rules=tuple(rules), source=source
    )


def read_policy(path: Path) -> Policy:
    """The policy in the file ``path`` (an unreadable file is a :class:`ConfigError`, a bad
    policy a :class:`ParseError` at file:line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the response policy: {exc}", location=str(path)) from None
    return parse_policy(text, source=str(path))
