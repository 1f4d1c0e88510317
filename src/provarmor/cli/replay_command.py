"""``provarmor replay``: upload a recording to a manager as a (virtual) host of its own.

    provarmor replay DATASET_OR_NDJSON --manager URL --enroll-token TOKEN --host-id NAME

It enrols like an agent (the host id it gives is stamped on every event, so a lab recording
made here shows up as another host), then uploads the events in numbered batches. The manager
acknowledges each batch; sending the same file again is answered as duplicates, so a replay
that was interrupted can simply be run again. Used to feed a fleet from recorded data and to
test the manager over the network (e.g. from a network namespace).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from provarmor.model.event import Event, Host
    from provarmor.sources.base import IngestReport

console = Console(stderr=True)
BATCH_EVENTS = 2_000


def _events(path: Path, report: IngestReport, host: Host) -> Iterator[Event]:
    import msgspec

    from provarmor.sources.base import HostContext
    from provarmor.sources.ndjson import read_ndjson

    source = path / "events.ndjson.gz" if path.is_dir() else path
    for event in read_ndjson(source, report=report, host=HostContext()):
        yield msgspec.structs.replace(event, host=host)


def replay(
    path: Annotated[
        Path, typer.Argument(help="Lab dataset directory or NDJSON file.", exists=True)
    ],
    manager: Annotated[str, typer.Option(help="Manager URL (http[s]://host:port).")],
    enroll_token: Annotated[str, typer.Option(help="One-time enrolment token.")],
    host_id: Annotated[str, typer.Option(help="The host id to replay as.")],
    ca: Annotated[Path | None, typer.Option(help="CA certificate of the manager.")] = None,
) -> None:
    """Enrol as HOST_ID and upload the recording's events to the manager."""
    from provarmor.manager.client import ManagerClient
    from provarmor.model.event import Host
    from provarmor.sources.base import IngestReport

    client = ManagerClient(manager, ca_file=ca)
    try:
        client.enroll(enroll_token, host_id=host_id, hostname=host_id)
        report = IngestReport(source=str(path))
        host = Host(id=host_id, name=host_id)
        batch: list[Event] = []
        sent = duplicates = 0
        sequence = 0
        for event in _events(path, report, host):
            batch.append(event)
            if len(batch) >= BATCH_EVENTS:
                sequence += len(batch)
                duplicates += client.upload(sequence, batch).duplicate
                sent += len(batch)
                batch = []
        if batch:
            sequence += len(batch)
            duplicates += client.upload(sequence, batch).duplicate
            sent += len(batch)
    finally:
        client.close()
    console.print(
        f"uploaded {sent:,} events as host {host_id} (agent {client.agent_id}); "
        f"{duplicates} batches were already there; {report.rejected} records rejected"
    )


def register(app: typer.Typer, *, panel: str) -> None:
    app.command(rich_help_panel=panel)(replay)
