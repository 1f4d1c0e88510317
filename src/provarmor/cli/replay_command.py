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
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
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
STATE_VERSION = 1


class ReplayState(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay keeps between runs (JSON, one file per manager, host id and content)."""

    version: int = STATE_VERSION
    manager: str
    host_id: str
    recording: str
    digest: str
    credential: str
    uploaded: int = 0
    """Events the manager has acknowledged so far (the upload position)."""


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
    try:
        acked = client.acked_sequence()
    except UplinkError as exc:
        raise ConfigError(
            f"the manager refused the agent this replay was uploading as ({exc.message}); "
            f"delete {path} to replay as a new agent (every event would be stored again)",
            location=str(path),
        ) from None
    return msgspec.structs.replace(state, uploaded=acked)


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
    try:
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
            )
            _save(saved, state)
        sequence = state.uploaded
        events = islice(_events(source, report, Host(id=host_id, name=host_id)), sequence, None)
        while batch := list(islice(events, BATCH_EVENTS)):
            sequence += len(batch)
            duplicates += client.upload(sequence, batch).duplicate
            sent += len(batch)
            state = msgspec.structs.replace(state, uploaded=sequence)
            _save(saved, state)
    finally:
        client.close()
    console.print(
        f"uploaded {sent:,} events as host {escape(host_id)} (agent {client.agent_id}); "
        f"{duplicates} batches were already there; {report.rejected} records rejected",
        highlight=False,
    )


def register(app: typer.Typer, *, panel: str) -> None:
    app.command(rich_help_panel=panel)(replay)
