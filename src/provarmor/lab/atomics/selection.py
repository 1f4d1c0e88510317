"""Which atomic tests can run on this machine, and for each one that cannot, why not.

:func:`select` decides for one Linux test, in this order: its executor must be ``sh`` or
``bash`` (``manual``, ``powershell`` and ``command_prompt`` cannot run here); it must not be
for a cloud, a container runtime or another operating system (FreeBSD, macOS, ESXi,
RHEL-only); every ``#{argument}`` must have a default; every download must be one of the
atomics' own ``src/`` files (served locally) and nothing else may reach beyond loopback; and
the command, the cleanup, the dependency checks and the payload scripts they run must pass
the safety screen. A runnable test comes with its :class:`AtomicPlan`: the substituted texts,
the files to serve, and for each dependency whether its ``get_prereq_command`` may run, or
which allow-listed packages would satisfy it. Whether a dependency is in fact missing is
only known when its check runs (:mod:`provarmor.lab.atomics.execution`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from provarmor.lab.atomics.areas import Areas
from provarmor.lab.atomics.arguments import Workspace, argument_values, substitute, unresolved
from provarmor.lab.atomics.downloads import Rewritten, rewrite_downloads
from provarmor.lab.atomics.hazards import Finding, Hazard, pattern_findings
from provarmor.lab.atomics.identities import Identities, created_identities
from provarmor.lab.atomics.model import AtomicTest
from provarmor.lab.atomics.network import destinations
from provarmor.lab.atomics.packages import requested_packages
from provarmor.lab.atomics.safety import screen

SHELLS = {"sh": "/bin/sh", "bash": "/bin/bash"}
_CLOUD_PLATFORMS = re.compile(r"^(iaas|containers|azure-ad|office-365|google-workspace|saas)")
_CLOUD_TOOLS = re.compile(
    r"(?<![\w./-])(aws|az|gcloud|kubectl|docker|podman|kind|terraform|stratus|oci)\s+\w"
)
_OTHER_SYSTEMS = re.compile(
    r"freebsd|macos|mac os|darwin|esxi|centos|rhel|redhat|red hat|fedora|(?<!x )windows", re.I
)
_LINUX_NAMES = re.compile(r"linux|debian|ubuntu|\bnix\b", re.I)
_MAX_PAYLOAD = 256 * 1024
_DATA_SUFFIXES = frozenset({".txt", ".json", ".csv", ".db", ".xml", ".md", ".tf", ".tfvars"})
"""Payloads that are data, not programs: read by the test, never run, so not screened."""
_INTERACTIVE = re.compile(r"pty\.spawn\(|\bemacs\s+[^\n;|&]*-nw\b")


class SkipReason(StrEnum):
    EXECUTOR = "executor"
    """manual, powershell, command_prompt: nothing here can run them."""
    CLOUD = "cloud-or-container"
    OTHER_SYSTEM = "other-system"
    UNRESOLVED = "unresolved-argument"
    INTERNET = "needs-internet"
    UNSAFE = "unsafe"
    PAYLOAD = "payload-missing"
    """The command runs a file of the atomics folder that the local copy lacks."""
    INTERACTIVE = "interactive"
    """It waits for a person at a terminal (``pty.spawn``, ``emacs -nw``)."""
    DEPENDENCY = "dependency-missing"
    """Decided when the test runs: a check failed and could not be fixed offline."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DependencyPlan:
    description: str
    check: str
    """The substituted ``prereq_command`` (exit 0: the dependency is there)."""
    fix: str = ""
    """The substituted ``get_prereq_command``."""
    fix_blocked: str = ""
    """Why ``fix`` may not run ('' when it may)."""
    packages: tuple[str, ...] = ()
    """Allow-listed Debian packages that stand in for ``fix`` (installed before the run)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AtomicPlan:
    test: AtomicTest
    workspace: Workspace
    shell: str
    dependency_shell: str
    command: str
    cleanup: str
    dependencies: tuple[DependencyPlan, ...] = ()
    served: tuple[str, ...] = ()
    """Atomics ``src/`` files the local server must offer (``T1059.004/src/x.sh``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    test: AtomicTest
    plan: AtomicPlan | None = None
    reason: SkipReason | None = None
    detail: str = ""

    @property
    def runnable(self) -> bool:
        return self.plan is not None


class _Skip(Exception):
    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _check_kind(test: AtomicTest) -> None:
    executor = test.executor.name
    if executor not in SHELLS:
        raise _Skip(SkipReason.EXECUTOR, f"executor {executor} cannot run here")
    if test.dependency_executor not in ("", *SHELLS):
        raise _Skip(SkipReason.EXECUTOR, f"dependencies need {test.dependency_executor}")
    clouds = [name for name in test.platforms if _CLOUD_PLATFORMS.match(name)]
    if clouds:
        raise _Skip(SkipReason.CLOUD, f"platform {', '.join(clouds)}")
    texts = [test.executor.command, *(d.prereq_command for d in test.dependencies)]
    tool = next((m.group(1) for t in texts if (m := _CLOUD_TOOLS.search(t))), None)
    if tool is not None:
        raise _Skip(SkipReason.CLOUD, f"needs {tool}")
    other = _OTHER_SYSTEMS.search(test.name)
    if other is not None and not _LINUX_NAMES.search(test.name):
        raise _Skip(SkipReason.OTHER_SYSTEM, f"written for {other.group(0)}")


def _payloads(texts: Iterable[str], workspace: Workspace, atomics: Path) -> dict[str, str]:
    """Text payloads the texts name: ``<workspace.atomics>/T…/src/…`` paths, by name."""
    found: dict[str, str] = {}
    prefix = re.escape(workspace.atomics.rstrip("/")) + r"/(T[\d.]+/src/[^\s'\"`;|&)]+)"
    for text in texts:
        for match in re.finditer(prefix, text):
            found[match.group(1)] = match.group(1)
    return found


def _missing_payloads(
    texts: Iterable[str], fixes: Iterable[str], *, workspace: Workspace, atomics: Path
) -> list[str]:
    """Files of the atomics folder the texts use that neither exist nor are seen to by a
    dependency (its check or its fix names them)."""
    prefix = re.escape(workspace.atomics.rstrip("/")) + r"/(T[\d.]+/[^\s'\"`;|&)]+)"
    made = " ".join(fixes)
    missing = []
    for text in texts:
        for match in re.finditer(prefix, text):
            relative = match.group(1).rstrip("/")
            if not (atomics / relative).exists() and relative not in made:
                missing.append(relative)
    return missing


def _read_payload(path: Path) -> str | None:
    try:
        data = path.read_bytes()[:_MAX_PAYLOAD]
    except OSError:
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def _payload_findings(
    sources: Iterable[str], *, atomics: Path, areas: Areas
) -> tuple[list[Finding], list[str]]:
    findings: list[Finding] = []
    places: list[str] = []
    for source in sources:
        technique, _, relative = source.partition("/src/")
        if Path(relative).suffix.lower() in _DATA_SUFFIXES:
            continue
        text = _read_payload(atomics / technique / "src" / relative)
        if text is None:
            continue
        shell = relative.endswith(".sh") or re.match(r"#!\s*\S*\b(ba)?sh\b", text) is not None
        found = screen(text, areas=areas) if shell else pattern_findings(text)
        findings += [Finding(f.hazard, f"{relative}: {f.detail}") for f in found]
        places += [f"{relative}: {place}" for place in destinations(text, shell=shell)]
    return findings, places


def _summary(findings: Sequence[Finding]) -> str:
    return "; ".join(str(finding) for finding in findings[:4])


@dataclass(frozen=True, slots=True, kw_only=True)
class _Texts:
    values: dict[str, str]
    workspace: Workspace
    atomics: Path

    def fill(self, text: str) -> Rewritten:
        filled = substitute(text, self.values, atomics=self.workspace.atomics)
        missing = unresolved(filled)
        if missing:
            raise _Skip(SkipReason.UNRESOLVED, f"no value for {', '.join(missing)}")
        return rewrite_downloads(filled, atomics=self.atomics)


def _dependency_plan(
    dependency: tuple[str, Rewritten, Rewritten], *, areas: Areas, created: Identities
) -> DependencyPlan:
    description, check, fix = dependency
    blocked = ""
    packages: tuple[str, ...] = ()
    findings = screen(fix.text, areas=areas, created=created) if fix.text.strip() else []
    places = [*fix.unserved, *destinations(fix.text)]
    request = requested_packages(fix.text)
    if any(finding.hazard is Hazard.PACKAGES for finding in findings) or not request.empty:
        refused = request.refused()
        if request.debian and not refused:
            packages = request.debian
            blocked = f"installs packages ({', '.join(request.debian)}): allowed before the run"
        else:
            wanted = refused or request.others or ("?",)
            blocked = f"needs packages not allowed offline ({', '.join(wanted)})"
    elif findings:
        blocked = f"unsafe: {_summary(findings)}"
    elif places:
        blocked = f"needs internet: {places[0]}"
    return DependencyPlan(
        description=description.strip(),
        check=check.text,
        fix=fix.text,
        fix_blocked=blocked,
        packages=packages,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Filled:
    command: Rewritten
    cleanup: Rewritten
    dependencies: list[tuple[str, Rewritten, Rewritten]]
    """(description, check, fix) of each dependency."""

    @property
    def always(self) -> list[Rewritten]:
        """What runs whatever happens: the command, the cleanup, the checks."""
        return [self.command, self.cleanup, *(check for _, check, _ in self.dependencies)]

    @property
    def dependency_texts(self) -> list[str]:
        return [text.text for _, check, fix in self.dependencies for text in (check, fix)]


def _fill(test: AtomicTest, *, workspace: Workspace, atomics: Path) -> _Filled:
    texts = _Texts(
        values=argument_values(test, workspace=workspace), workspace=workspace, atomics=atomics
    )
    return _Filled(
        command=texts.fill(test.executor.command),
        cleanup=texts.fill(test.executor.cleanup_command),
        dependencies=[
            (d.description, texts.fill(d.prereq_command), texts.fill(d.get_prereq_command))
            for d in test.dependencies
        ],
    )


def _refuse(filled: _Filled, *, workspace: Workspace, atomics: Path, areas: Areas) -> None:
    """Raise :class:`_Skip` when what always runs is unsafe, needs the internet, lacks its
    payload or waits for a terminal."""
    always = filled.always
    created = created_identities([r.text for r in always] + filled.dependency_texts)
    served = {source for r in always for source in r.served}
    payloads = served | set(_payloads((r.text for r in always), workspace, atomics))
    findings = [f for r in always for f in screen(r.text, areas=areas, created=created)]
    places = [url for r in always for url in r.unserved]
    places += [place for r in always for place in destinations(r.text)]
    more_findings, more_places = _payload_findings(sorted(payloads), atomics=atomics, areas=areas)
    if findings or more_findings:
        raise _Skip(SkipReason.UNSAFE, _summary(list(dict.fromkeys(findings + more_findings))))
    if places or more_places:
        raise _Skip(SkipReason.INTERNET, f"needs internet: {(places or more_places)[0]}")
    text = filled.command.text
    absent = _missing_payloads(
        [text], filled.dependency_texts, workspace=workspace, atomics=atomics
    )
    if absent:
        raise _Skip(SkipReason.PAYLOAD, f"not in the atomics folder: {absent[0]}")
    interactive = _INTERACTIVE.search(text)
    if interactive is not None:
        raise _Skip(SkipReason.INTERACTIVE, f"needs a terminal: {interactive.group(0)}")


def _plan(test: AtomicTest, *, workspace: Workspace, atomics: Path, areas: Areas) -> AtomicPlan:
    filled = _fill(test, workspace=workspace, atomics=atomics)
    _refuse(filled, workspace=workspace, atomics=atomics, areas=areas)
    created = created_identities([r.text for r in filled.always] + filled.dependency_texts)
    served = [
        s for r in (*filled.always, *(f for _, _, f in filled.dependencies)) for s in r.served
    ]
    return AtomicPlan(
        test=test,
        workspace=workspace,
        shell=SHELLS[test.executor.name],
        dependency_shell=SHELLS[test.dependency_executor or test.executor.name],
        command=filled.command.text,
        cleanup=filled.cleanup.text,
        dependencies=tuple(
            _dependency_plan(dependency, areas=areas, created=created)
            for dependency in filled.dependencies
        ),
        served=tuple(dict.fromkeys(served)),
    )


def select(test: AtomicTest, *, workspace: Workspace, atomics: Path) -> Verdict:
    """Whether ``test`` can run here (with its plan) or why not."""
    areas = Areas().with_scratch(workspace.scratch)
    try:
        _check_kind(test)
        plan = _plan(test, workspace=workspace, atomics=atomics, areas=areas)
    except _Skip as skip:
        return Verdict(test=test, reason=skip.reason, detail=skip.detail)
    return Verdict(test=test, plan=plan)


def matches(test: AtomicTest, only: Sequence[str]) -> bool:
    """``test`` is named by one of ``only``: a test id (``T1059.004-3``), a technique
    (``T1059.004``, or ``T1059`` with its sub-techniques) or a GUID."""
    for word in only:
        key = word.strip().upper()
        technique = test.technique_id.upper()
        if key in (test.test_id.upper(), technique, test.guid.upper()):
            return True
        if technique.startswith(key + "."):
            return True
    return False
