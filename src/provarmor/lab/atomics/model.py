"""Atomic Red Team tests as data, and the pure parser that reads them from YAML text.

An Atomic Red Team technique file (``atomics/T1059.004/T1059.004.yaml``) names one ATT&CK
technique and lists its tests: each has supported platforms, input arguments with defaults,
dependencies (a ``prereq_command`` that checks, a ``get_prereq_command`` that fixes) and an
executor (``sh``, ``bash``, ``powershell``, ``command_prompt`` or ``manual``) with the
command and an optional ``cleanup_command``.

:func:`parse_atomic_file` is pure: text in, :class:`AtomicFile` out. A file it cannot read
at all raises :class:`~provarmor.model.errors.ParseError`; a single malformed test becomes a
``ParseError`` in :attr:`AtomicFile.errors` and the other tests of the file are kept. Every
error names the file and the field (``T1059.004.yaml:atomic_tests[2].executor.name``).
:func:`load_catalogue` is the only function here that reads files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from provarmor.model.errors import ParseError

LINUX = "linux"


@dataclass(frozen=True, slots=True, kw_only=True)
class InputArgument:
    name: str
    description: str = ""
    type: str = "string"
    default: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    description: str = ""
    prereq_command: str = ""
    get_prereq_command: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Executor:
    name: str
    """``sh``, ``bash``, ``powershell``, ``command_prompt`` or ``manual``."""
    command: str = ""
    cleanup_command: str = ""
    steps: str = ""
    """The instructions of a ``manual`` test."""
    elevation_required: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AtomicTest:
    technique_id: str
    technique_name: str
    number: int
    """1-based position in the technique file (Invoke-AtomicTest's ``-TestNumbers``)."""
    name: str
    guid: str = ""
    description: str = ""
    platforms: tuple[str, ...] = ()
    arguments: tuple[InputArgument, ...] = ()
    dependencies: tuple[Dependency, ...] = ()
    dependency_executor: str = ""
    """The shell for the dependency commands ('' means the executor's)."""
    executor: Executor
    source: str = ""
    """The technique file it came from."""

    @property
    def test_id(self) -> str:
        """``T1059.004-3``: technique id and test number."""
        return f"{self.technique_id}-{self.number}"

    @property
    def runs_on_linux(self) -> bool:
        return LINUX in self.platforms


@dataclass(frozen=True, slots=True, kw_only=True)
class AtomicFile:
    technique_id: str
    display_name: str
    tests: tuple[AtomicTest, ...]
    errors: tuple[ParseError, ...] = ()
    """Tests that could not be read (the others are in ``tests``)."""


def _text(value: object, *, location: str, required: bool = False) -> str:
    """A scalar field as text: strings as they are, numbers and booleans spelt as YAML does."""
    if value is None:
        if required:
            raise ParseError("missing", location=location)
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ParseError(f"expected text, found {type(value).__name__}", location=location)


def _mapping(value: object, *, location: str) -> Mapping[str, object]:
    if value is None:
        raise ParseError("missing", location=location)
    if not isinstance(value, Mapping):
        raise ParseError(f"expected a mapping, found {type(value).__name__}", location=location)
    return {str(key): item for key, item in value.items()}


def _sequence(value: object, *, location: str) -> Sequence[object]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ParseError(f"expected a list, found {type(value).__name__}", location=location)
    return value


def _arguments(value: object, *, location: str) -> tuple[InputArgument, ...]:
    if value is None:
        return ()
    found = []
    for name, spec in _mapping(value, location=location).items():
        where = f"{location}.{name}"
        fields = _mapping(spec, location=where)
        found.append(
            InputArgument(
                name=name,
                description=_text(fields.get("description"), location=f"{where}.description"),
                type=_text(fields.get("type"), location=f"{where}.type").lower() or "string",
                default=_text(fields.get("default"), location=f"{where}.default"),
            )
        )
    return tuple(found)


def _dependencies(value: object, *, location: str) -> tuple[Dependency, ...]:
    found = []
    for index, item in enumerate(_sequence(value, location=location)):
        where = f"{location}[{index}]"
        fields = _mapping(item, location=where)
        found.append(
            Dependency(
                description=_text(fields.get("description"), location=f"{where}.description"),
                prereq_command=_text(
                    fields.get("prereq_command"), location=f"{where}.prereq_command"
                ),
                get_prereq_command=_text(
                    fields.get("get_prereq_command"), location=f"{where}.get_prereq_command"
                ),
            )
        )
    return tuple(found)


def _executor(value: object, *, location: str) -> Executor:
    fields = _mapping(value, location=location)
    name = _text(fields.get("name"), location=f"{location}.name", required=True).strip().lower()
    if not name:
        raise ParseError("empty executor name", location=f"{location}.name")
    elevation = fields.get("elevation_required", False)
    if elevation is not None and not isinstance(elevation, bool):
        raise ParseError("expected true or false", location=f"{location}.elevation_required")
    executor = Executor(
        name=name,
        command=_text(fields.get("command"), location=f"{location}.command"),
        cleanup_command=_text(
            fields.get("cleanup_command"), location=f"{location}.cleanup_command"
        ),
        steps=_text(fields.get("steps"), location=f"{location}.steps"),
        elevation_required=bool(elevation),
    )
    if not executor.command.strip() and not executor.steps.strip():
        raise ParseError("no command and no steps", location=f"{location}.command")
    return executor


def _platforms(value: object, *, location: str) -> tuple[str, ...]:
    items = _sequence(value, location=location)
    names = [
        _text(item, location=f"{location}[{i}]").strip().lower() for i, item in enumerate(items)
    ]
    return tuple(name for name in names if name)


def parse_test(
    value: object, *, technique_id: str, technique_name: str, number: int, location: str
) -> AtomicTest:
    """One entry of ``atomic_tests`` (``number`` is 1-based); raises :class:`ParseError`."""
    fields = _mapping(value, location=location)
    return AtomicTest(
        technique_id=technique_id,
        technique_name=technique_name,
        number=number,
        name=_text(fields.get("name"), location=f"{location}.name", required=True).strip(),
        guid=_text(fields.get("auto_generated_guid"), location=f"{location}.auto_generated_guid"),
        description=_text(fields.get("description"), location=f"{location}.description"),
        platforms=_platforms(
            fields.get("supported_platforms"), location=f"{location}.supported_platforms"
        ),
        arguments=_arguments(fields.get("input_arguments"), location=f"{location}.input_arguments"),
        dependencies=_dependencies(fields.get("dependencies"), location=f"{location}.dependencies"),
        dependency_executor=_text(
            fields.get("dependency_executor_name"), location=f"{location}.dependency_executor_name"
        )
        .strip()
        .lower(),
        executor=_executor(fields.get("executor"), location=f"{location}.executor"),
        source=location.split(":", 1)[0],
    )


def _load_yaml(text: str, *, location: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{location}:{mark.line + 1}" if mark is not None else location
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ParseError(f"not valid YAML: {problem}", location=where) from error
    except (ValueError, RecursionError) as error:  # e.g. NUL bytes, absurd nesting
        raise ParseError(f"not valid YAML: {error}", location=location) from error


def parse_atomic_file(text: str, *, location: str) -> AtomicFile:
    """Parse a technique file; ``location`` names it in errors (``T1059.004.yaml``)."""
    fields = _mapping(_load_yaml(text, location=location), location=location)
    technique_id = _text(
        fields.get("attack_technique"), location=f"{location}:attack_technique", required=True
    ).strip()
    if not technique_id.upper().startswith("T"):
        raise ParseError(
            f"{technique_id!r} is not a technique id", location=f"{location}:attack_technique"
        )
    display_name = _text(fields.get("display_name"), location=f"{location}:display_name")
    tests: list[AtomicTest] = []
    errors: list[ParseError] = []
    entries = _sequence(fields.get("atomic_tests"), location=f"{location}:atomic_tests")
    for index, entry in enumerate(entries):
        try:
            tests.append(
                parse_test(
                    entry,
                    technique_id=technique_id.upper(),
                    technique_name=display_name,
                    number=index + 1,
                    location=f"{location}:atomic_tests[{index}]",
                )
            )
        except ParseError as error:
            errors.append(error)
    return AtomicFile(
        technique_id=technique_id.upper(),
        display_name=display_name,
        tests=tuple(tests),
        errors=tuple(errors),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalogue:
    """Every technique file under an ``atomics`` folder, parsed."""

    atomics: Path
    """The ``atomics`` folder (technique folders with their ``src/`` payloads)."""
    files: int
    tests: tuple[AtomicTest, ...]
    """Every test that parsed, for every platform."""
    errors: tuple[ParseError, ...]

    @property
    def linux_tests(self) -> tuple[AtomicTest, ...]:
        return tuple(test for test in self.tests if test.runs_on_linux)


def atomics_folder(path: Path) -> Path:
    """The ``atomics`` folder for ``path``: the folder itself or its ``atomics`` child."""
    return path / "atomics" if (path / "atomics").is_dir() else path


def load_catalogue(path: Path) -> Catalogue:
    """Read ``atomics/T*/T*.yaml`` under ``path`` (an Atomic Red Team checkout or its
    ``atomics`` folder); unreadable files are counted as errors, never raised."""
    folder = atomics_folder(path)
    tests: list[AtomicTest] = []
    errors: list[ParseError] = []
    files = sorted(folder.glob("T*/T*.yaml"))
    for file in files:
        location = f"{file.parent.name}/{file.name}"
        try:
            parsed = parse_atomic_file(file.read_text(errors="replace"), location=location)
        except ParseError as error:
            errors.append(error)
            continue
        except OSError as error:
            errors.append(ParseError(f"cannot read: {error.strerror}", location=location))
            continue
        tests.extend(parsed.tests)
        errors.extend(parsed.errors)
    return Catalogue(atomics=folder, files=len(files), tests=tuple(tests), errors=tuple(errors))
