"""``provarmor replay``: upload a recording to a manager as a (virtual) host of its own.

    provarmor replay DATASET_OR_NDJSON --manager URL --enroll-token TOKEN --host-id NAME

It enrols like an agent (the host id it gives is stamped on every event, so a lab recording
made here shows up as another host), then uploads the events in numbered batches. Used to
feed a fleet from recorded data and to test the manager over the network (e.g. from a
network namespace).

An interrupted replay resumes: the agent credential and the upload position are kept in a
state file (0600) under ``--state-dir``, one per manager, host id and recording content.
Run again with the same arguments, it continues as the same agent from the position the
manager acknowledged (the one-time enrolment token is not needed again), so no event is
stored twice. When the manager no longer knows that agent, it refuses with a message
instead of starting over as a new agent.

In cluster mode the enrolment answer names the JetStream bus and gives the agent its own bus
credentials; the replay then publishes its batches there (kept in the state file too), and
its position is what the bus acknowledged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer
from rich.console import Console

from provarmor.cli.terminal import escape
from provarmor.model.errors import ConfigError

if TYPE_CHECKING:
    from provarmor.manager.client import ManagerClient
    from provarmor.model.event import Event, Host
    from provarmor.sources.base import IngestReport

console = Console(stderr=True)
BATCH_EVENTS = 2_000
STATE_VERSION = 2
"""1: manager, recording and upload position; 2: also the bus learned at enrolment."""


class ReplayState(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay keeps between runs (JSON, one file per manager, host id and content)."""

    version: int = STATE_VERSION
    manager: str
    host_id: str
    recording: str
    digest: str
    credential: str
    uploaded: int = 0
    """Events the manager (or, in cluster mode, the bus) has acknowledged so far."""
    bus: dict[str, str] | None = None
    """Cluster mode: the bus and the agent's credentials on it, from the enrolment answer."""


def _events(source: Path, report: IngestReport, host: Host) -> Iterator[Event]:
    from provarmor.sources.base import HostContext
    from provarmor.sources.ndjson import read_ndjson

    for event in read_ndjson(source, report=report, host=HostContext()):
        yield msgspec.structs.replace(event, host=host)


def state_file(state_dir: Path, *, manager: str, host_id: str, digest: str) -> Path:
    key = hashlib.blake2b(f"{manager}\0{host_id}\0{digest}".encode(), digest_size=10)
    return state_dir / "replay" / f"{key.hexdigest()}.json"


def _save(path: Path, state: ReplayState) -> None:
    """Write atomically, readable by the owner only (the credential is a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = path.with_suffix(".tmp")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(msgspec.json.encode(state))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, path)


def _resume(client: ManagerClient, path: Path) -> ReplayState:
    from provarmor.manager.client import UplinkError

    try:
        state = msgspec.json.decode(path.read_bytes(), type=ReplayState)
    except (OSError, msgspec.DecodeError) as exc:
        raise ConfigError(f"unreadable replay state: {exc}", location=str(path)) from None
    client.credential = state.credential
    if state.version not in (1, STATE_VERSION):
        raise ConfigError(f"replay state version {state.version} is unknown", location=str(path))
    try:
        acked = client.acked_sequence()
    except UplinkError as exc:
        raise ConfigError(
            f"the manager refused the agent this replay was uploading as ({exc.message}); "
            f"delete {path} to replay as a new agent (every event would be stored again)",
            location=str(path),
        ) from None
    if state.bus is not None:  # the bus acknowledged more than the workers analysed yet
        return state
    return msgspec.structs.replace(state, uploaded=acked, version=STATE_VERSION)


def _sender(
    client: ManagerClient, state: ReplayState, *, ca: Path | None, location: str, closing: ExitStack
) -> Callable[[int, list[Event]], bool]:
    """Send one batch (ending at a sequence) and say whether it was already there: over HTTP,
    or in cluster mode to the bus the enrolment named, as the agent's own bus user."""
    if state.bus is None:
        return lambda sequence, batch: client.upload(sequence, batch).duplicate
    from provarmor.bus.credentials import BusAccess
    from provarmor.bus.message import batch_message
    from provarmor.bus.publisher import BusPublisher

    access = BusAccess.from_dict(state.bus, location=location)
    publisher = BusPublisher(access.url, credentials=access.credentials, ca_file=ca)
    closing.callback(publisher.close)
    agent_id = client.agent_id

    def publish(sequence: int, batch: list[Event]) -> bool:
        before = publisher.duplicates
        message = batch_message(batch, agent_id=agent_id, host_id=state.host_id, sequence=sequence)
        publisher.publish([message])
        return publisher.duplicates > before

    return publish


def replay(  # noqa: PLR0913
    path: Annotated[
        Path, typer.Argument(help="Lab dataset directory or NDJSON file.", exists=True)
    ],
    manager: Annotated[str, typer.Option(help="Manager URL (http[s]://host:port).")],
    host_id: Annotated[str, typer.Option(help="The host id to replay as.")],
    enroll_token: Annotated[
        str | None,
        typer.Option(help="One-time enrolment token (first run only; a re-run resumes)."),
    ] = None,
    ca: Annotated[Path | None, typer.Option(help="CA certificate of the manager.")] = None,
    state_dir: Annotated[
        Path, typer.Option(help="Where the replay keeps its agent credential and position.")
    ] = Path("provarmor-state"),
) -> None:
    """Enrol as HOST_ID and upload the recording's events to the manager; resume if a
    replay of the same recording as the same host was interrupted."""
    from provarmor.evaluation.dataset import EVENTS_FILE
    from provarmor.manager.client import ManagerClient
    from provarmor.model.event import Host
    from provarmor.pipeline.ingest import file_digest
    from provarmor.sources.base import IngestReport

    source = path / EVENTS_FILE if path.is_dir() else path
    digest = file_digest(source)
    saved = state_file(state_dir, manager=manager, host_id=host_id, digest=digest)
    client = ManagerClient(manager, ca_file=ca)
    report = IngestReport(source=str(source))
    sent = duplicates = 0
    closing = ExitStack()
    closing.callback(client.close)
    with closing:
        if saved.exists():
            state = _resume(client, saved)
            console.print(
                f"resuming the replay as agent {client.agent_id}: "
                f"{state.uploaded:,} events were uploaded before",
                highlight=False,
            )
        elif enroll_token is None:
            raise ConfigError(f"the first replay of {source} as {host_id} needs --enroll-token")
        else:
            credential = client.enroll(enroll_token, host_id=host_id, hostname=host_id)
            state = ReplayState(
                manager=manager,
                host_id=host_id,
                recording=str(source),
                digest=digest,
                credential=credential,
                bus=client.bus.to_dict() if client.bus is not None else None,
            )
            _save(saved, state)
        send = _sender(client, state, ca=ca, location=str(saved), closing=closing)
        sequence = state.uploaded
        events = islice(_events(source, report, Host(id=host_id, name=host_id)), sequence, None)
        while batch := list(islice(events, BATCH_EVENTS)):
            sequence += len(batch)
            duplicates += send(sequence, batch)
            sent += len(batch)
            state = msgspec.structs.replace(state, uploaded=sequence)
            _save(saved, state)
    console.print(
        f"uploaded {sent:,} events as host {escape(host_id)} (agent {client.agent_id}); "
        f"{duplicates} batches were already there; {report.rejected} records rejected",
        highlight=False,
    )


def register(app: typer.Typer, *, panel: str) -> None:
    app.command(rich_help_panel=panel)(replay)
