"""Process lineage: the context each process runs in, derived from its ancestry and inputs.

The same act (a read of ``/etc/shadow``, ``useradd``, a tar of ``/etc/ssh``) is routine or
hostile depending on where it comes from, and the provenance stream says where. This module
follows the stream once, in order, and keeps for every process a :class:`Lineage`: a
context kind, what started it (``apt-get`` began a package transaction; a server accepted a
connection; a program written by a downloader ran) and the chain of programs from there to
the process, so a signal can say *why* it was lowered or kept.

Contexts, by what they do to a signal (:class:`Effect`):

* **own** (``provarmor``): the agent recorded the process in ProvArmor's own cgroup
  (``process.provarmor``, set at the source, never derived from names). Absolute, until
  the process execs outside that group (a lab jail moves its victims out).
* **raising** (keep or raise a signal, and beat any lowering context):
  ``server-child`` a descendant, forked after the accept, of a process that accepted an IP
  connection or listens for them (login services such as sshd excepted: their sessions
  follow the connection's client when it is a known local process, else they stay neutral);
  ``downloaded`` a process that executed (or mapped) a file written by a process that had
  received network data, or by any process in a raising context;
  ``remote-input`` a process that itself received network data (and its later
  descendants), outside a package transaction (fetching is what package managers do), unless
  the peer is a local process (a socket this host's process listens or connects on) that
  itself runs in a lowering context and took no outside input: a server an administrator's
  session started, answering that session, is the session's own data, not a remote
  endpoint's. A local peer of unknown or raising context counts as remote.
* **lowering**: ``package`` (apt, dpkg, rpm, dnf, yum, pip, npm ... and everything they
  run, maintainer scripts included); ``account`` (the system's account tools, useradd,
  usermod, userdel, chpasswd ..., and what they run: an account change through the tools
  made for it, as automation makes it: cron, configuration management over ssh, a script,
  all without a terminal; not on a terminal that no login program opened, which is how a
  web shell or an implant upgrades itself); ``admin`` (sudo/su run by a real user,
  uid >= 1000, or a process on a terminal of a login session: it has a controlling
  terminal and descends from a login program, sshd, login, a getty, through processes that
  all stayed in that session; a pseudo-terminal that a service's or a web server's
  descendant allocates itself, with ``script`` or python's ``pty``, is not one);
  ``scheduled`` (children of cron/atd); ``build`` (compilers, linkers, build tools,
  ``python -m venv``, and programs whose file a package or build lineage wrote, wherever
  they live); ``backup`` (an archiver, tar, zip, 7z, cpio, rsync, creating an archive or a
  copy on this host's disk, named on its command line, :mod:`provarmor.graph.archives`: it
  reads whole trees, host keys and the shadow file included, as every backup does; not
  when it writes to standard output, which a pipe may send anywhere, or to another host,
  and not on a terminal that no login program opened).
* **neutral**: ``service`` (started by init) and ``none``.

Context flows down the process tree (fork), changes at exec only toward a stronger context,
and is never lowered once raised.

Processes already running when the sensor started arrive as ``running`` events (what
``/proc`` showed, ancestors first: :mod:`provarmor.sources.running`). Each gets the context
its fork and exec would have given it under its parent's, then its sockets count as a listen
and an accept: so a terminal of an ssh session opened before the agent is ``admin``, cron's
jobs are ``scheduled``, and the children of a server that was already running are
``server-child``. For a process that was already running we cannot know whether it forked
after its parent accepted a connection; a child of a process that listens is a
``server-child`` all the same (as it is live: a server's child runs on a server's behalf,
and an attack that came in through it leaves no other mark), except below init (pid 1 or
systemd, which listens for socket-activated services and, in some sandboxes, for their
control API: its children are services) and below the login services (their sessions follow
the login rules). A process's own outgoing connections are not read from ``/proc``: whether
it received data through them is not known. Files remember the context of their last writer
(:class:`FileOrigin`), which is how ``downloaded`` and ``build`` reach the processes that run
them. Program names appear only to recognise the roles (package manager, account tool,
compiler, scheduler, login service), never as exceptions for rules.

Bounded: processes, files and connection ends are LRU tables; evictions are counted in
:class:`LineageStats`. Pure: events in, no I/O.
"""

from __future__ import annotations

import posixpath
from collections import OrderedDict
from dataclasses import dataclass, replace
from enum import StrEnum

from provarmor.graph.archives import archive_written
from provarmor.model.actions import Action
from provarmor.model.event import Event, Process
from provarmor.model.time_units import seconds_to_ns

MAX_CHAIN = 8
"""Programs kept in an explanation chain: the first three and the most recent ones."""
SERVED_WITHIN_NS = seconds_to_ns(2)
"""A login service's child serves the connection it accepted at most this long before."""
FIRST_REAL_UID = 1000
NOBODY_UID = 65534


class ContextKind(StrEnum):
    OWN = "provarmor"
    PACKAGE = "package"
    ACCOUNT = "account"
    ADMIN = "admin"
    SCHEDULED = "scheduled"
    BUILD = "build"
    BACKUP = "backup"
    SERVICE = "service"
    NONE = "none"
    SERVER_CHILD = "server-child"
    DOWNLOADED = "downloaded"
    REMOTE_INPUT = "remote-input"


class Effect(StrEnum):
    OWN = "own"
    LOWER = "lower"
    NEUTRAL = "neutral"
    RAISE = "raise"


EFFECT_OF: dict[ContextKind, Effect] = {
    ContextKind.OWN: Effect.OWN,
    ContextKind.PACKAGE: Effect.LOWER,
    ContextKind.ACCOUNT: Effect.LOWER,
    ContextKind.ADMIN: Effect.LOWER,
    ContextKind.SCHEDULED: Effect.LOWER,
    ContextKind.BUILD: Effect.LOWER,
    ContextKind.BACKUP: Effect.LOWER,
    ContextKind.SERVICE: Effect.NEUTRAL,
    ContextKind.NONE: Effect.NEUTRAL,
    ContextKind.SERVER_CHILD: Effect.RAISE,
    ContextKind.DOWNLOADED: Effect.RAISE,
    ContextKind.REMOTE_INPUT: Effect.RAISE,
}
_STRENGTH = {Effect.NEUTRAL: 0, Effect.LOWER: 1, Effect.RAISE: 2, Effect.OWN: 3}

DESCRIPTION: dict[ContextKind, str] = {
    ContextKind.OWN: "ProvArmor's own process (its cgroup)",
    ContextKind.PACKAGE: "package transaction",
    ContextKind.ACCOUNT: "account change",
    ContextKind.ADMIN: "interactive administration",
    ContextKind.SCHEDULED: "scheduled job",
    ContextKind.BUILD: "build/test lineage",
    ContextKind.BACKUP: "backup to an archive on this host",
    ContextKind.SERVICE: "service",
    ContextKind.NONE: "no known context",
    ContextKind.SERVER_CHILD: "network-facing server's child",
    ContextKind.DOWNLOADED: "downloaded-then-executed file",
    ContextKind.REMOTE_INPUT: "inputs from a remote endpoint",
}

PACKAGE_MANAGERS = frozenset(
    {
        "apt", "apt-get", "aptitude", "dpkg", "unattended-upgrade", "rpm", "dnf", "yum",
        "microdnf", "zypper", "apk", "pip", "pip3", "npm", "yarn", "pnpm", "gem",
        "debconf-set-selections", "dpkg-reconfigure", "debconf-communicate",
    }
)  # fmt: skip
BUILD_TOOLS = frozenset(
    {
        "cc", "gcc", "g++", "c++", "clang", "clang++", "cc1", "cc1plus", "as", "ld", "ld.bfd",
        "ld.gold", "collect2", "make", "cmake", "ninja", "meson", "cargo", "rustc", "go",
    }
)  # fmt: skip
ACCOUNT_TOOLS = frozenset(
    {
        "useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel", "gpasswd",
        "chpasswd", "chgpasswd", "chage", "passwd", "newusers", "chsh", "chfn", "adduser",
        "deluser", "addgroup", "delgroup",
    }
)  # fmt: skip
"""The shadow suite's and Debian's account tools: where an account change starts."""
SCHEDULERS = frozenset({"cron", "crond", "anacron", "atd"})
PRIVILEGE_TOOLS = frozenset({"sudo", "su", "doas", "pkexec", "run0"})
LOGIN_SERVICES = frozenset(
    {"sshd", "sshd-session", "login", "telnetd", "xrdp", "gdm-session-worker"}
)
"""Servers that authenticate a user before running anything: their children are sessions."""
LOGIN_PROGRAMS = LOGIN_SERVICES | {"getty", "agetty", "mingetty", "mgetty"}
"""Programs whose descendants run in a user's login session (a terminal there is the user's)."""
INIT_PROGRAMS = frozenset({"systemd", "init"})
INTERPRETERS = frozenset({"sh", "bash", "dash", "zsh", "perl", "node", "ruby", "php"})
OPTIONS_WITH_VALUE = frozenset({"-W", "-X", "-Q"})
MAX_LABEL = 60
INHERITED_FIRST = frozenset({ContextKind.SERVER_CHILD, ContextKind.DOWNLOADED})
"""Raising contexts a child keeps whatever its parent did since (they say the most)."""
WRITES = frozenset({Action.WRITE, Action.CREATE, Action.TRUNCATE, Action.LINK})
# Read on the per-event path as module globals: on CPython 3.11 an attribute read on an
# Enum class goes through EnumType.__getattr__'s slow hook (~0.15 us; a global ~0.01 us).
_FORK, _OPEN, _EXEC, _MMAP_EXEC = Action.FORK, Action.OPEN, Action.EXEC, Action.MMAP_EXEC
_RENAME, _ACCEPT, _LISTEN = Action.RENAME, Action.ACCEPT, Action.LISTEN
_CONNECT, _RECV, _RUNNING = Action.CONNECT, Action.RECV, Action.RUNNING


@dataclass(frozen=True, slots=True)
class Lineage:
    """The context of one process and how it came about."""

    kind: ContextKind
    reason: str = ""
    """What started the context (``apt-get started a package transaction``)."""
    chain: tuple[str, ...] = ()
    """Programs from the context's origin down to this process."""

    @property
    def effect(self) -> Effect:
        return EFFECT_OF[self.kind]

    def explain(self) -> str:
        text = DESCRIPTION[self.kind]
        if self.chain:
            text += ": " + " -> ".join(self.chain)
        if self.reason:
            text += f" ({self.reason})"
        return text

    def extended(self, label: str) -> Lineage:
        if self.chain and self.chain[-1] == label:
            return self
        chain = (*self.chain, label)
        if len(chain) > MAX_CHAIN:
            chain = (*chain[:3], "...", *chain[-(MAX_CHAIN - 4) :])
        return replace(self, chain=chain)


NEUTRAL = Lineage(ContextKind.NONE)


@dataclass(frozen=True, slots=True)
class FileOrigin:
    """Who last wrote a file, in which context, and whether that writer had network input."""

    writer: str
    lineage: Lineage
    fetched_from: str = ""
    """The remote endpoint the writer had received data from, when it had."""

    def tainted(self) -> bool:
        return bool(self.fetched_from) or self.lineage.effect is Effect.RAISE

    def installed(self) -> bool:
        return self.lineage.kind in (ContextKind.PACKAGE, ContextKind.BUILD)

    def explain(self, path: str) -> str:
        text = f"{path} was written by {self.writer}"
        if self.fetched_from:
            text += f" after it received data from {self.fetched_from}"
        return f"{text} [{self.lineage.explain()}]"


@dataclass(slots=True)
class LineageStats:
    processes: int = 0
    processes_evicted: int = 0
    files_evicted: int = 0
    ends_evicted: int = 0
    local_ends_evicted: int = 0
    own_marked: int = 0


@dataclass(slots=True)
class _ProcessState:
    lineage: Lineage
    label: str
    accepted: tuple[int, str, Lineage | None] | None = None
    """(time, peer, the peer's lineage when it is a known local client) of the last accept."""
    listening: str = ""
    """Where it listens for connections (a server even when its accepts were not seen)."""
    fetched_from: str = ""
    """The first remote endpoint it received data from (or connected to over TCP)."""
    session: str = ""
    """The login program whose session it runs in (``sshd``), inherited at fork; empty when
    it does not descend from one, or a raising context came between."""
    serving: bool = False
    """It listened or accepted a connection while nothing had raised its context: a
    service an attack comes in through, not a process of the attack's own."""
    init: bool = False
    """It is init (pid 1, or systemd/init): its children are services, whatever it listens
    on (socket activation)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LineageLimits:
    max_processes: int = 65536
    max_files: int = 65536
    max_ends: int = 8192


class LineageClassifier:
    """Follows events in stream order; :meth:`lineage_of` answers for any process seen."""

    def __init__(self, limits: LineageLimits | None = None) -> None:
        self.limits = limits or LineageLimits()
        self.stats = LineageStats()
        self._processes: OrderedDict[str, _ProcessState] = OrderedDict()
        self._files: OrderedDict[str, FileOrigin] = OrderedDict()
        self._ends: OrderedDict[str, Lineage] = OrderedDict()
        """``ip:port`` of a local client's own end -> its (raising) lineage."""
        self._local_ends: OrderedDict[str, str] = OrderedDict()
        """``ip:port`` a local process listens or connected on -> its entity id."""

    # -- queries --------------------------------------------------------------------------

    def lineage_of(self, entity_id: str) -> Lineage:
        state = self._processes.get(entity_id)
        return state.lineage if state is not None else NEUTRAL

    def origin_of(self, path: str) -> FileOrigin | None:
        return self._files.get(path)

    def serves(self, entity_id: str) -> bool:
        """The process took connections (listened or accepted) before anything raised its
        context: a service (a web server, sshd) whose children an attack may have run, not
        a process the attack started. A listener the attack itself started (a bind shell
        from a web shell) was raised first, so it does not count."""
        state = self._processes.get(entity_id)
        return state is not None and state.serving

    # -- the stream -----------------------------------------------------------------------

    def observe(self, event: Event) -> None:  # noqa: C901  (one branch per action family)
        process = event.process
        if not process.entity_id:
            return
        action = event.event.action
        if action is _FORK:
            self._on_fork(event)
            return
        if action is _RUNNING:
            self._on_running(event)
            return
        state = self._state(process)
        if process.provarmor and state.lineage.kind is not ContextKind.OWN:
            self.stats.own_marked += 1
            state.lineage = Lineage(
                ContextKind.OWN, "recorded in ProvArmor's cgroup", (state.label,)
            )
        if action is _OPEN:  # most events: tested first
            file = event.file
            if file is not None and file.path.endswith("/pyvenv.cfg"):
                self._on_venv_config(state, file.path, process.executable)
        elif action is _EXEC:
            self._on_exec(state, event)
        elif action is _MMAP_EXEC and event.file is not None:
            self._on_run_file(state, event.file.path)
        elif action in WRITES and event.file is not None and event.event.outcome != "failure":
            self._wrote(state, event.file.path)
        elif action is _RENAME and event.file is not None:
            moved = self._files.pop(event.file.original_path, None)
            if moved is not None:
                self._remember_file(event.file.path, moved)
            else:
                self._wrote(state, event.file.path)
        elif action is _ACCEPT:
            self._on_accept(state, event)
        elif action is _LISTEN and event.event.outcome != "failure":
            state.listening = _endpoint(event.source) or "a socket"
            state.serving = state.serving or state.lineage.effect is not Effect.RAISE
            self._remember_local_end(state.listening, process.entity_id)
        elif action is _CONNECT:
            self._on_connect(state, event)
        elif action is _RECV:
            self._on_recv(state, event)

    # -- process tree ---------------------------------------------------------------------

    def _state(self, process: Process) -> _ProcessState:
        state = self._processes.get(process.entity_id)
        if state is not None:
            self._processes.move_to_end(process.entity_id)
            return state
        parent_ref = process.parent
        parent = self._processes.get(parent_ref.entity_id) if parent_ref is not None else None
        lineage = parent.lineage if parent is not None else NEUTRAL
        state = _ProcessState(lineage=lineage, label=_label(process.executable, process.args))
        if parent is not None:
            state.session = _session_below(parent, lineage)
        state.init = process.pid == 1 or _program(state.label) in INIT_PROGRAMS
        self._put(process.entity_id, state)
        self._classify_program(state, process)
        return state

    def _put(self, entity_id: str, state: _ProcessState) -> None:
        self._processes[entity_id] = state
        self.stats.processes += 1
        if len(self._processes) > self.limits.max_processes:
            self._processes.popitem(last=False)
            self.stats.processes_evicted += 1

    def _on_fork(self, event: Event) -> None:
        child = event.process
        parent_ref = child.parent
        parent = self._processes.get(parent_ref.entity_id) if parent_ref is not None else None
        label = _label(child.executable, child.args)
        if parent is None:
            lineage = self._root_lineage(event)
        else:
            lineage = self._child_lineage(parent, event.timestamp)
        if child.provarmor:
            self.stats.own_marked += 1
            lineage = Lineage(ContextKind.OWN, "recorded in ProvArmor's cgroup", (label,))
        existing = self._processes.get(child.entity_id)
        if existing is not None and _STRENGTH[existing.lineage.effect] > _STRENGTH[lineage.effect]:
            return
        session = _session_below(parent, lineage) if parent is not None else ""
        self._put(child.entity_id, _ProcessState(lineage=lineage, label=label, session=session))

    def _on_running(self, event: Event) -> None:
        """A process already running when the sensor started (``/proc``, ancestors first):
        its context as if its fork and exec had been seen, then its sockets as if its listen
        and accept had been (see the module docstring). When its own events came first (they
        race the scan), what they made of it stays unless it is still neutral."""
        process = event.process
        parent_ref = process.parent
        parent = self._processes.get(parent_ref.entity_id) if parent_ref is not None else None
        if parent is None:
            lineage = self._root_lineage(event)
        else:
            lineage = self._child_lineage(parent, event.timestamp)
        label = _label(process.executable, process.args)
        state = self._processes.get(process.entity_id)
        fresh = state is None or state.lineage.effect is Effect.NEUTRAL
        if state is None:
            state = _ProcessState(lineage=lineage, label=label)
            self._put(process.entity_id, state)
        elif fresh:
            state.lineage, state.label = lineage, label
        if parent is not None and not state.session:
            state.session = _session_below(parent, state.lineage)
        state.init = state.init or process.pid == 1 or _program(label) in INIT_PROGRAMS
        if fresh:
            if process.provarmor:
                self.stats.own_marked += 1
                state.lineage = Lineage(ContextKind.OWN, "recorded in ProvArmor's cgroup")
            self._classify_program(state, process)
            state.lineage = state.lineage.extended(state.label)
        if not state.init:  # what init listens on or accepted says nothing of its services
            self._running_sockets(state, event)

    def _running_sockets(self, state: _ProcessState, event: Event) -> None:
        listening = _endpoint(event.source)
        if listening and not state.listening:
            state.listening = listening
            state.serving = state.serving or state.lineage.effect is not Effect.RAISE
            self._remember_local_end(listening, event.process.entity_id)
        peer = _endpoint(event.destination)
        if peer and state.accepted is None:
            state.accepted = (event.timestamp, peer, self._ends.get(peer))
            state.serving = state.serving or state.lineage.effect is not Effect.RAISE

    def _root_lineage(self, event: Event) -> Lineage:
        parent = event.process.parent
        if parent is not None and (parent.pid == 1 or _program(parent.executable) in INIT_PROGRAMS):
            return Lineage(ContextKind.SERVICE, "started by init", ())
        return NEUTRAL

    def _child_lineage(self, parent: _ProcessState, now: int) -> Lineage:
        lineage = parent.lineage
        if lineage.effect is Effect.OWN or lineage.kind in INHERITED_FIRST:
            return lineage
        if parent.accepted is not None:
            when, peer, client = parent.accepted
            if client is not None:
                return client.extended(f"[connection {peer}]").extended(parent.label)
            if _program(parent.label) not in LOGIN_SERVICES:
                return Lineage(
                    ContextKind.SERVER_CHILD,
                    f"{parent.label} accepted a connection from {peer}",
                    (parent.label,),
                )
            if now - when <= SERVED_WITHIN_NS:  # a login session: its user authenticated
                return Lineage(ContextKind.NONE, f"a session {parent.label} opened for {peer}")
        elif parent.listening and not parent.init and _program(parent.label) not in LOGIN_SERVICES:
            return Lineage(
                ContextKind.SERVER_CHILD,
                f"{parent.label} listens on {parent.listening}",
                (parent.label,),
            )
        if lineage.effect is Effect.RAISE:
            return lineage
        if parent.init or _program(parent.label) in INIT_PROGRAMS:
            return Lineage(ContextKind.SERVICE, "started by init", ())
        if _program(parent.label) in SCHEDULERS and lineage.effect is Effect.NEUTRAL:
            return Lineage(ContextKind.SCHEDULED, f"started by {parent.label}", (parent.label,))
        return lineage

    def _on_exec(self, state: _ProcessState, event: Event) -> None:
        process = event.process
        if state.lineage.kind is ContextKind.OWN and not process.provarmor:
            state.lineage = Lineage(ContextKind.NONE, "left ProvArmor's cgroup before this exec")
        state.label = _label(process.executable, process.args)
        self._classify_program(state, process)
        if event.file is not None:
            self._on_run_file(state, event.file.path)
        state.lineage = state.lineage.extended(state.label)

    def _classify_program(self, state: _ProcessState, process: Process) -> None:
        """A stronger context from what the process runs (never a weaker one)."""
        effect = state.lineage.effect
        if effect in (Effect.OWN, Effect.RAISE):
            return
        program = _program(state.label)
        found: Lineage | None = None
        if _is_package_manager(process):
            if state.lineage.kind is not ContextKind.PACKAGE:
                found = Lineage(ContextKind.PACKAGE, f"{program} started a package transaction")
        elif effect is Effect.LOWER:
            return
        elif (tool := _one_run(process, ACCOUNT_TOOLS)) and not _own_terminal(state, process):
            found = Lineage(ContextKind.ACCOUNT, f"{tool} changes the account database")
        elif (archive := archive_written(process.executable, process.args)) and not (
            _own_terminal(state, process)
        ):
            found = Lineage(ContextKind.BACKUP, f"{program} writes {archive}")
        elif program in PRIVILEGE_TOOLS and _real_user(process):
            user = process.real_user.id if process.real_user else "?"
            found = Lineage(ContextKind.ADMIN, f"{program} run by user {user}")
        elif state.session and _on_terminal(process):
            found = Lineage(
                ContextKind.ADMIN, f"terminal {process.tty} of a {state.session} session"
            )
        elif _is_venv(process):
            found = Lineage(ContextKind.BUILD, "a virtual environment was created")
        elif program in BUILD_TOOLS:
            found = Lineage(ContextKind.BUILD, f"{program} is a build tool")
        if found is not None:
            state.lineage = found

    def _on_run_file(self, state: _ProcessState, path: str) -> None:
        """Running (or mapping) a file: a downloaded one makes the process ``downloaded``
        whatever it was (short of own); one a package or build lineage wrote makes a neutral
        process part of a build/test lineage."""
        origin = self._files.get(path)
        if origin is None or state.lineage.effect is Effect.OWN:
            return
        if origin.tainted() and state.lineage.kind is not ContextKind.DOWNLOADED:
            chain = state.lineage.chain or origin.lineage.chain[-2:]
            state.lineage = Lineage(ContextKind.DOWNLOADED, origin.explain(path), chain)
        elif origin.installed() and state.lineage.effect is Effect.NEUTRAL:
            state.lineage = Lineage(ContextKind.BUILD, origin.explain(path))

    def _on_venv_config(self, state: _ProcessState, path: str, executable: str) -> None:
        """An interpreter reading the ``pyvenv.cfg`` beside its own ``bin/``: it runs in a
        virtual environment, wherever that lives (a build/test lineage)."""
        if state.lineage.effect is not Effect.NEUTRAL:
            return
        root = posixpath.dirname(path)
        if executable.startswith(root + "/bin/"):
            state.lineage = Lineage(
                ContextKind.BUILD, f"runs in the virtual environment {root}", (state.label,)
            )

    # -- files and network ----------------------------------------------------------------

    def _wrote(self, state: _ProcessState, path: str) -> None:
        fetched = state.fetched_from
        if state.lineage.kind is ContextKind.PACKAGE:
            fetched = ""  # a package manager fetches by design; its files are installed
        self._remember_file(path, FileOrigin(state.label, state.lineage, fetched))

    def _remember_file(self, path: str, origin: FileOrigin) -> None:
        self._files.pop(path, None)
        self._files[path] = origin
        if len(self._files) > self.limits.max_files:
            self._files.popitem(last=False)
            self.stats.files_evicted += 1

    def _on_accept(self, state: _ProcessState, event: Event) -> None:
        peer = _endpoint(event.destination)
        if not peer or event.event.outcome == "failure":
            return
        state.accepted = (event.timestamp, peer, self._ends.get(peer))
        state.serving = state.serving or state.lineage.effect is not Effect.RAISE

    def _on_connect(self, state: _ProcessState, event: Event) -> None:
        """A client in a raising context lends it to the server child that serves this
        connection; then the client's answer counts as its input (the sensor may report
        the received bytes only later, after the client has written them out)."""
        own_end = _endpoint(event.source)
        if event.event.outcome != "failure":
            self._remember_local_end(own_end, event.process.entity_id)
        if own_end and state.lineage.effect is Effect.RAISE:
            self._ends.pop(own_end, None)
            self._ends[own_end] = state.lineage
            if len(self._ends) > self.limits.max_ends:
                self._ends.popitem(last=False)
                self.stats.ends_evicted += 1
        if event.event.outcome != "failure" and _is_tcp(event):
            self._on_recv(state, event)

    def _remember_local_end(self, end: str, entity_id: str) -> None:
        if not end or end.endswith(":0"):
            return
        self._local_ends.pop(end, None)
        self._local_ends[end] = entity_id
        if len(self._local_ends) > self.limits.max_ends:
            self._local_ends.popitem(last=False)
            self.stats.local_ends_evicted += 1

    def _vouched_local_peer(self, peer: str) -> bool:
        """``peer`` is a local process's socket, and that process runs in a lowering context
        (so it took no outside input since: that would have raised it)."""
        owner = self._local_ends.get(peer)
        if owner is None and _is_loopback(peer):  # a server listening on every address
            port = peer.rsplit(":", 1)[1]
            owner = self._local_ends.get(f"0.0.0.0:{port}") or self._local_ends.get(f"[::]:{port}")
        state = self._processes.get(owner) if owner is not None else None
        return state is not None and state.lineage.effect is Effect.LOWER

    def _on_recv(self, state: _ProcessState, event: Event) -> None:
        """Data from a remote endpoint raises the process, except what a login service
        receives: the login protocol of the session it runs for its authenticated user,
        whose context the session rules decide (a terminal of its own: ``admin``; none:
        neutral). The sensor reports received bytes up to a flush period after they came,
        so whether sshd's recv is seen before or after it forks the user's shell is timing,
        and must not decide the shell's context."""
        peer = _endpoint(event.destination)
        if not peer or self._vouched_local_peer(peer) or _program(state.label) in LOGIN_SERVICES:
            return
        if not state.fetched_from:
            state.fetched_from = peer
        if state.lineage.effect in (Effect.NEUTRAL, Effect.LOWER) and (
            state.lineage.kind is not ContextKind.PACKAGE
        ):
            state.lineage = Lineage(
                ContextKind.REMOTE_INPUT, f"received data from {peer}", (state.label,)
            )


def _session_below(parent: _ProcessState, lineage: Lineage) -> str:
    """The login session a child of ``parent`` runs in (``lineage``: the child's): the
    parent's, or the one the parent opens when it is a login program; none below a raising
    context (a session's user cannot vouch for what a server or a download started)."""
    if lineage.effect is Effect.RAISE:
        return ""
    program = _program(parent.label)
    return program if program in LOGIN_PROGRAMS else parent.session


def _is_loopback(endpoint: str) -> bool:
    return endpoint.startswith(("127.", "[::1]:"))


def _is_tcp(event: Event) -> bool:
    return event.network is not None and event.network.transport == "tcp"


def _endpoint(endpoint: object) -> str:
    ip = getattr(endpoint, "ip", "")
    port = getattr(endpoint, "port", 0)
    if not ip:
        return ""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _program(label: str) -> str:
    return posixpath.basename(label.split(" ", 1)[0])


def _label(executable: str, args: tuple[str, ...]) -> str:
    """The program as an analyst reads it: a script's path rather than its interpreter."""
    name = posixpath.basename(executable) or (posixpath.basename(args[0]) if args else "")
    if not name.startswith("python") and name not in INTERPRETERS:
        return name or executable
    rest = iter(args[1:])
    for arg in rest:
        if arg == "-m":
            return f"{name} -m {next(rest, '')}"
        if arg == "-c":
            return f"{name} -c {' '.join(next(rest, '').split())[:MAX_LABEL]}"
        if arg in OPTIONS_WITH_VALUE:
            next(rest, None)
        elif not arg.startswith("-"):
            return f"{name} {arg[:MAX_LABEL]}"
    return name


def _one_run(process: Process, programs: frozenset[str]) -> str:
    """Which of ``programs`` the process runs (empty: none), as its executable or as the
    script or module an interpreter runs (``perl /usr/sbin/adduser``, ``python3 -m pip``)."""
    names = [_program(process.executable)]
    names += [posixpath.basename(arg) for arg in process.args[:2]]
    if len(process.args) > 2 and process.args[1] == "-m":
        names.append(process.args[2])
    return next((name for name in names if name in programs), "")


def _is_package_manager(process: Process) -> bool:
    if _one_run(process, PACKAGE_MANAGERS):
        return True
    return any(arg.endswith("/npm-cli.js") for arg in process.args[:2])


def _on_terminal(process: Process) -> bool:
    return bool(process.tty) and process.tty != "(none)"


def _own_terminal(state: _ProcessState, process: Process) -> bool:
    """On a terminal that no login program opened: one a shell gave itself (``script``,
    python's ``pty.spawn``), as a web shell or an implant upgrades itself."""
    return _on_terminal(process) and not state.session


def _is_venv(process: Process) -> bool:
    args = process.args
    return len(args) > 2 and args[1] == "-m" and args[2] in ("venv", "virtualenv")


def _real_user(process: Process) -> bool:
    user = process.real_user
    if user is None or not user.id.isdigit():
        return False
    return FIRST_REAL_UID <= int(user.id) != NOBODY_UID
