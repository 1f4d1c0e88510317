"""The per-process feature profile, built online from events.

A :class:`Profile` holds, per attribute, the normalised tokens a process has shown (with one
raw example each, for explanations): its executable, argv tokens, files read, written and
executed or mapped, network endpoints, child programs and identity changes. A
:class:`ProfileTable` feeds events into profiles and records which ones gained something NEW
(they are *dirty* and must be re-scored); an event that repeats known tokens costs a lookup.
A profile also carries the scorer's running state (how many tokens per attribute were scored,
and its most surprising tokens) so that re-scoring costs only its new tokens.

The table grows with the host's history (exited processes are kept for their late
children), so a checkpoint takes it as changes: :meth:`ProfileTable.take_tables` hands out the
profiles changed since the last call (or all of them), :meth:`ProfileTable.put_tables` puts
them back in order. Whoever changes a profile or the table outside :meth:`ProfileTable.
observe` says so (:meth:`ProfileTable.changed_profile`, :meth:`ProfileTable.forget`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from provarmor.detection.anomaly.tokens import (
    argument_tokens,
    endpoint_token,
    identity_class,
    normalize_path,
)
from provarmor.model.actions import Action
from provarmor.model.event import Event

ATTRIBUTES = ("exe", "arg", "read", "write", "exec", "net", "child", "other")
"""The attributes of a profile, in vector order."""

_FILE_ATTRIBUTE: dict[Action, str] = {
    Action.OPEN: "read",
    Action.READ: "read",
    Action.WRITE: "write",
    Action.CREATE: "write",
    Action.TRUNCATE: "write",
    Action.DELETE: "write",
    Action.CHMOD: "write",
    Action.CHOWN: "write",
    Action.RENAME: "write",
    Action.LINK: "write",
    Action.MMAP_EXEC: "exec",
    Action.MODULE_LOAD: "exec",
    Action.MEMFD_CREATE: "exec",
}
_EGRESS = frozenset({Action.CONNECT, Action.SEND})
_INGRESS = frozenset({Action.ACCEPT, Action.RECV})
_LOCAL = frozenset({Action.BIND, Action.LISTEN})
# Read on the per-event path as module globals: on CPython 3.11 an attribute read on an
# Enum class goes through EnumType.__getattr__'s slow hook (~0.15 us; a global ~0.01 us).
_EXEC, _EXIT, _RUNNING = Action.EXEC, Action.EXIT, Action.RUNNING
_PATH_CACHE_SIZE = 1 << 16


def context_key(exe: str, parent_exe: str) -> str:
    """An executable in the context of its parent's executable."""
    return f"{exe}\x1e{parent_exe}"


@dataclass(slots=True, eq=False)
class Profile:
    """What one process has done, as tokens per attribute."""

    entity_id: str
    host_id: str
    executable: str = ""
    parent_id: str = ""
    parent_exe: str = ""
    """The parent's executable token (its context), when known."""
    first_timestamp: int = 0
    last_timestamp: int = 0
    last_event_id: str = ""
    exited: bool = False
    dirty: bool = False
    alerted_score: float = 0.0
    changes: int = 0
    change_event_id: str = ""
    """The event that last added something new (the one an alert points at)."""
    tokens: dict[str, dict[str, str]] = field(
        default_factory=lambda: {attribute: {} for attribute in ATTRIBUTES}
    )
    """attribute -> token -> one raw value it came from."""
    scored: dict[str, int] = field(default_factory=dict)
    """Scorer state: attribute -> how many of its tokens are already scored."""
    surprises: list[tuple[float, str, str]] = field(default_factory=list)
    """Scorer state: the most surprising (surprise, attribute, token), highest first."""

    def reset_scoring(self) -> None:
        """Forget the scorer state (the tokens were replaced, as by an exec)."""
        self.scored.clear()
        self.surprises.clear()

    @property
    def exe(self) -> str:
        return next(iter(self.tokens["exe"]), "")

    @property
    def context(self) -> str:
        """The executable as started by its parent's executable (``exe`` when unknown)."""
        return context_key(self.exe, self.parent_exe) if self.parent_exe else self.exe

    def add(self, attribute: str, token: str, raw: str) -> bool:
        """Record a token; True when it is new for this process (the profile is then dirty)."""
        known = self.tokens[attribute]
        if token in known:
            return False
        known[token] = raw
        self.dirty = True
        self.changes += 1
        return True


class ProfileEntry(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One profile's place in a checkpoint's chunk of the table."""

    entity_id: str
    moved: bool
    """(Re)inserted since the previous chunk: goes last in the table's order."""
    profile: Profile | None
    """None: not in the table any more."""


class ProfilesChunk(msgspec.Struct, frozen=True):
    profiles: list[ProfileEntry]


class ProfileTable:
    """Profiles by process entity id, fed one event at a time."""

    TABLES = ("profiles",)
    """The attributes :meth:`take_tables` hands out (a checkpoint keeps them apart)."""
    TRACKERS = ("_changed",)
    CACHES = ("_paths",)
    """Attributes a checkpoint leaves out as well: answers it can compute again."""

    def __init__(self) -> None:
        self.profiles: dict[str, Profile] = {}
        self.changed: list[Profile] = []
        """Profiles that turned dirty since the caller last drained this list."""
        self._paths: dict[str, str] = {}
        self._changed: dict[str, bool] | None = None
        """Entity ids whose profile changed since :meth:`take_tables` (True: inserted
        meanwhile); None until a first :meth:`take_tables`."""

    def observe(self, event: Event) -> Profile | None:
        """Feed one event; returns the acting process's profile (None for host-wide events
        and ``running`` ones: a process's state when the sensor started is not behaviour)."""
        process = event.process
        entity_id = process.entity_id
        if not entity_id or event.event.action is _RUNNING:
            return None
        profile = self.profiles.get(entity_id)
        was_dirty = profile is not None and profile.dirty
        changes = profile.changes if profile is not None else 0
        if profile is None:
            profile = self._create(event)
        elif self._changed is not None and entity_id not in self._changed:
            self._changed[entity_id] = False
        profile.last_timestamp = event.timestamp
        profile.last_event_id = event.event.id
        action = event.event.action
        if action is _EXEC:
            self._on_exec(profile, event)
        elif action is _EXIT:
            profile.exited = True
        else:
            self._on_activity(profile, event, action)
        if profile.changes != changes:
            profile.change_event_id = event.event.id
        if profile.dirty and not was_dirty:
            self.changed.append(profile)
        return profile

    def _create(self, event: Event) -> Profile:
        process = event.process
        parent = process.parent.entity_id if process.parent is not None else ""
        profile = Profile(
            entity_id=process.entity_id,
            host_id=event.host.id,
            executable=process.executable,
            parent_id=parent,
            first_timestamp=event.timestamp,
        )
        profile.parent_exe = self._parent_exe(event)
        if process.executable:
            profile.add("exe", self._path(process.executable), process.executable)
        if process.command_line or process.args:
            self._set_arguments(profile, event)
        self.profiles[process.entity_id] = profile
        if self._changed is not None:
            self._changed.pop(process.entity_id, None)
            self._changed[process.entity_id] = True
        return profile

    def _on_exec(self, profile: Profile, event: Event) -> None:
        process = event.process
        executable = process.executable or (event.file.path if event.file else "")
        if executable and executable != profile.executable:
            profile.executable = executable
            profile.tokens["exe"] = {}
            profile.add("exe", self._path(executable), executable)
        if process.parent is not None and not profile.parent_id:
            profile.parent_id = process.parent.entity_id
        if not profile.parent_exe:
            profile.parent_exe = self._parent_exe(event)
        profile.tokens["arg"] = {}
        profile.reset_scoring()
        self._set_arguments(profile, event)
        profile.dirty = True
        profile.changes += 1
        parent = self.profiles.get(profile.parent_id)
        if parent is not None and executable:
            was_dirty = parent.dirty
            if parent.add("child", self._path(executable), executable):
                self.changed_profile(parent.entity_id)
                if not was_dirty:
                    self.changed.append(parent)

    def _parent_exe(self, event: Event) -> str:
        parent = event.process.parent
        if parent is None:
            return ""
        known = self.profiles.get(parent.entity_id)
        executable = parent.executable or (known.executable if known is not None else "")
        return self._path(executable) if executable else ""

    def _set_arguments(self, profile: Profile, event: Event) -> None:
        process = event.process
        for token in argument_tokens(process.args, process.command_line):
            profile.add("arg", token, token)

    def _on_activity(self, profile: Profile, event: Event, action: Action) -> None:
        attribute = _FILE_ATTRIBUTE.get(action)
        if attribute is not None:
            file = event.file
            if file is not None and file.path and event.event.outcome != "failure":
                profile.add(attribute, self._path(file.path), file.path)
            return
        if action in _EGRESS or action in _INGRESS:
            remote = event.destination
            if remote is not None:
                verb = "connect" if action in _EGRESS else "accept"
                local_port = event.source.port if event.source is not None else 0
                port = remote.port if verb == "connect" else local_port
                token = endpoint_token(verb=verb, ip=remote.ip, port=port, address=remote.address)
                profile.add("net", token, _endpoint_text(remote.ip, remote.port, remote.address))
        elif action in _LOCAL:
            local = event.source
            if local is not None:
                token = endpoint_token(verb="listen", ip=local.ip, port=local.port)
                profile.add("net", token, _endpoint_text(local.ip, local.port, local.address))
        elif action in (Action.SETUID, Action.SETGID):
            user = event.target.user if event.target is not None else None
            if user is not None:
                profile.add("other", f"{action.value} {identity_class(user.id)}", user.id)
        elif action in (Action.PTRACE, Action.KILL):
            profile.add("other", action.value, action.value)

    def changed_profile(self, entity_id: str) -> None:
        """The caller changed this profile (its scoring state)."""
        if self._changed is not None:
            self._changed.setdefault(entity_id, False)

    def forget(self, entity_id: str) -> Profile | None:
        """Drop a profile from the table; returns it (None: it was not there)."""
        self.changed_profile(entity_id)
        return self.profiles.pop(entity_id, None)

    def take_tables(self, *, full: bool) -> ProfilesChunk:
        """The profiles changed since the last call (``full``: all, as if into an empty
        table), in the order :meth:`put_tables` must apply them; tracks changes from then
        on."""
        if full:
            changed = dict.fromkeys(self.profiles, True)
        elif self._changed is None:
            raise ValueError("no changes were tracked: take a full chunk first")
        else:
            changed = self._changed
        self._changed = {}
        profiles = self.profiles
        return ProfilesChunk(
            [ProfileEntry(key, moved, profiles.get(key)) for key, moved in changed.items()]
        )

    def put_tables(self, chunk: ProfilesChunk) -> None:
        """Apply the profiles :meth:`take_tables` handed out: the chunks in the order they
        were taken, the first a ``full`` one, into an empty table."""
        profiles = self.profiles
        for entry in chunk.profiles:
            if entry.moved or entry.profile is None:
                profiles.pop(entry.entity_id, None)
            if entry.profile is not None:
                profiles[entry.entity_id] = entry.profile

    def _path(self, path: str) -> str:
        token = self._paths.get(path)
        if token is None:
            if len(self._paths) >= _PATH_CACHE_SIZE:
                self._paths.clear()
            token = normalize_path(path)
            self._paths[path] = token
        return token


def _endpoint_text(ip: str, port: int, address: str) -> str:
    if not ip:
        return address
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def build_histories(events: Iterable[Event]) -> list[list[Profile]]:
    """Per process, copies of its profile as online scoring sees it grow (after its 1st, 2nd,
    4th, 8th ... change) and finally its complete profile: training and calibration then see
    the partial profiles the detector scores, not only finished ones."""
    table = ProfileTable()
    histories: dict[str, list[Profile]] = {}
    for event in events:
        profile = table.observe(event)
        table.changed.clear()
        if profile is None:
            continue
        changes = profile.changes
        if profile.change_event_id == event.event.id and changes & (changes - 1) == 0:
            histories.setdefault(profile.entity_id, []).append(snapshot(profile))
    for entity_id, profile in table.profiles.items():
        history = histories.setdefault(entity_id, [])
        if not history or history[-1].changes != profile.changes:
            history.append(snapshot(profile))
    return list(histories.values())


def snapshot(profile: Profile) -> Profile:
    """A copy of ``profile`` as it is now (its token tables copied, not shared)."""
    copy = Profile(
        entity_id=profile.entity_id,
        host_id=profile.host_id,
        executable=profile.executable,
        parent_id=profile.parent_id,
        parent_exe=profile.parent_exe,
        first_timestamp=profile.first_timestamp,
        last_timestamp=profile.last_timestamp,
        changes=profile.changes,
        exited=profile.exited,
    )
    copy.tokens = {attribute: dict(tokens) for attribute, tokens in profile.tokens.items()}
    return copy


def build_profiles(events: Iterable[Event]) -> dict[str, Profile]:
    """All profiles of a finite event stream (training and tests)."""
    table = ProfileTable()
    for event in events:
        table.observe(event)
    for profile in table.profiles.values():
        profile.dirty = False
    return table.profiles
