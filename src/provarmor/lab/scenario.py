"""What a scenario is: named steps with their ATT&CK techniques, and a seeded plan of commands.

A :class:`Scenario` is static description (steps, techniques, expected root cause: what the
docs and the labels name) plus a ``plan`` function that, given the run's
:class:`~provarmor.lab.context.LabContext`, returns the concrete :class:`Plan`: the
vulnerable preconditions to set up before recording, the payloads the lab's servers serve,
one :class:`Action` per step, and every path the run may leave behind.

Actions reach the machine the way a real intruder would (:class:`Channel`): through the web
application's command-injection bug, through the implant's C2 tasking, or through the reverse
shell a dropped binary opened. ``LAUNCH`` starts a process directly (an attacker root the
runner knows by pid), for entry points that are not the web application.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from provarmor.lab.techniques import Tactic, Technique

if TYPE_CHECKING:
    from provarmor.lab.context import LabContext


class Channel(StrEnum):
    """How an action's command reaches the victim."""

    WEBSHELL = "webshell"
    """Sent through the web application's command-injection bug (runs as its user)."""
    IMPLANT = "implant"
    """Queued on the C2 server; the running implant fetches, runs and reports it."""
    SHELL = "shell"
    """Sent down the reverse shell the dropped binary opened to the C2 server."""
    LAUNCH = "launch"
    """Started by the lab itself as an attacker process (recorded as an attacker root)."""
    REMOTE = "remote"
    """Run by the lab inside the C2 server's namespace, standing for the attacker's own
    machine (lab machinery, left out of this host's analysis): not an attacker root here;
    the sessions it opens on host2 are found through ``lateral_to``."""
    VICTIM = "victim"
    """Ordinary work a lab user does that sets off a planted trap (not an attacker root:
    the tampered program it runs is found through ``Plan.exec_roots``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepSpec:
    """One stage of the attack as the description and the labels name it."""

    name: str
    summary: str
    techniques: tuple[Technique, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """The concrete command for one step in one run."""

    step: str
    channel: Channel
    command: str
    user: str = ""
    """For LAUNCH and VICTIM: the user to run as (root when empty)."""
    agent: str = ""
    """For IMPLANT: which implant's queue (the context's default implant when empty)."""
    timeout: float = 20.0
    lateral_to: str = ""
    """A lab role (``host2``) whose sshd sessions opened during this step are the attacker's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupFile:
    """A precondition file written (as root, before recording) by the lab."""

    path: str
    content: str
    mode: int = 0o644
    owner: str = "root"


@dataclass(frozen=True, slots=True, kw_only=True)
class Payload:
    """A file the C2 server serves at ``path``; C sources are compiled first when ``compile``."""

    path: str
    content: str
    compile: bool = False
    archive_as: str = ""
    """When set, served as a zip archive holding the content under this member name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    setup_files: tuple[SetupFile, ...] = ()
    setup_commands: tuple[tuple[str, ...], ...] = ()
    """Run as root after the setup files are written (e.g. ``chmod u+s``)."""
    payloads: tuple[Payload, ...] = ()
    actions: tuple[Action, ...] = ()
    artifacts: tuple[str, ...] = ()
    """Every path the run may create outside the watched system files; removed on clean-up."""
    exec_roots: tuple[str, ...] = ()
    """Programs or scripts the lab tampered with: a process running one is an attacker root."""
    accounts: tuple[str, ...] = ()
    """Users (each with its group) the set-up or the steps create: the run's account journal
    removes them afterwards whatever happens to the steps."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str
    title: str
    modelled_on: str
    description: str
    root_cause: str
    """What a correct investigation should name as the origin of the attack."""
    steps: tuple[StepSpec, ...]
    host_logs: bool = False
    """Recorded with the host's logs (the journal) beside the kernel sensor; host2's sshd
    then takes passwords and logs to the journal."""
    plan: Callable[[LabContext], Plan] = field(repr=False)

    @property
    def techniques(self) -> tuple[Technique, ...]:
        """Distinct techniques over all steps, in first-use order."""
        seen: dict[str, Technique] = {}
        for step in self.steps:
            for technique in step.techniques:
                seen.setdefault(technique.id, technique)
        return tuple(seen.values())

    @property
    def tactics(self) -> tuple[Tactic, ...]:
        seen: dict[Tactic, None] = {}
        for technique in self.techniques:
            seen.setdefault(technique.tactic, None)
        return tuple(seen)

    def step(self, name: str) -> StepSpec:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)
