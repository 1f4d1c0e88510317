"""``provarmor worker``: analyse one partition of the fleet's JetStream bus into the
findings store (cluster mode; the embedded ``provarmor up`` needs none)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from provarmor.cli.config_command import OPTIONS
from provarmor.cli.server_commands import (
    DbOption,
    StateOption,
    detection_kit,
    open_manager_store,
    server_settings,
)

console = Console(stderr=True)


def worker(  # noqa: PLR0913 (one argument per command-line option)
    bus: Annotated[str, typer.Option("--bus", help="NATS URL of the JetStream server.")],
    partition: Annotated[int, typer.Option(min=0, help="The partition this worker runs.")] = 0,
    partitions: Annotated[
        int, typer.Option(min=1, help="Partitions of the stream (fixed when it is made).")
    ] = 4,
    claim: Annotated[
        bool,
        typer.Option(
            "--claim",
            help="Share the partitions with the other --claim workers by leases (no "
            "--partition): a new worker takes its share, a dead one's are taken over.",
        ),
    ] = False,
    lease_ttl: Annotated[
        float,
        typer.Option(min=1, help="Seconds a partition lease lasts unrenewed (with --claim)."),
    ] = 10.0,
    ack_wait: Annotated[
        float, typer.Option(min=1, help="Seconds before an unacknowledged batch is re-sent.")
    ] = 30.0,
    checkpoint_batches: Annotated[
        int,
        typer.Option(
            min=1,
            help="Checkpoint a host (and write its graph) every this many of its batches; "
            "a host opened elsewhere takes the batches since from the stream again.",
        ),
    ] = 64,
    checkpoint_seconds: Annotated[
        float,
        typer.Option(
            min=0.1, help="Checkpoint a host also when its last checkpoint is this old (seconds)."
        ),
    ] = 10.0,
    fetch: Annotated[
        int,
        typer.Option(
            min=1,
            help="Batches taken from the bus at a time (at most): analysed together, stored "
            "in one transaction, then acknowledged.",
        ),
    ] = 256,
    metrics_listen: Annotated[
        str | None,
        typer.Option(
            help="Serve the worker's Prometheus metrics (batches, checkpoints) on HOST:PORT."
        ),
    ] = None,
    bus_credentials: Annotated[
        Path | None, typer.Option(help="The worker's bus user (NATS .creds file).")
    ] = None,
    bus_ca: Annotated[
        Path | None, typer.Option(help="CA certificate of the bus (tls:// URL).")
    ] = None,
    db: DbOption = None,
    state_dir: StateOption = None,
    model: Annotated[Path | None, typer.Option(help="Anomaly model bundle.")] = None,
) -> None:
    """Pull batches of one partition (with --claim: of those its leases give it), analyse
    each host's in order, store the findings."""
    from prometheus_client import start_http_server

    from provarmor.bus.credentials import Credentials
    from provarmor.bus.stream import StreamLayout
    from provarmor.manager.app import open_outputs
    from provarmor.manager.bus_worker import BusWorker, StreamReplay, WorkerOptions
    from provarmor.manager.ingest import Ingestor, graph_opener
    from provarmor.manager.retention import Retention
    from provarmor.manager.worker_metrics import WorkerMetrics

    listen = _address(metrics_listen) if metrics_listen else None
    layout = StreamLayout(partitions=partitions)
    layout.consumer(partition)  # refuses a partition outside the layout before any work
    credentials = Credentials.load(bus_credentials) if bus_credentials else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = server_settings(database_url=db, state_dir=state_dir, model=model)
    store = open_manager_store(settings)
    replay = StreamReplay()
    ingestor = Ingestor(
        store,
        kit=detection_kit(settings),
        open_graph=graph_opener(
            database_url=settings.effective_database_url(), state_dir=settings.state_dir
        ),
        max_batch_events=settings.max_batch_events,
        keep_event_json=settings.keep_event_json,
        models_dir=settings.state_dir / "models",
        outputs=open_outputs(settings),
        checkpoints=settings.checkpoints,
        replay=replay,
        checkpoint_batches=checkpoint_batches,
        checkpoint_seconds=checkpoint_seconds,
    )
    options = WorkerOptions(
        url=bus,
        partition=partition,
        layout=layout,
        ack_wait_s=ack_wait,
        claim=claim,
        lease_ttl_s=lease_ttl,
        credentials=credentials,
        ca_file=bus_ca,
        settle_every_s=checkpoint_seconds,
        fetch=fetch,
    )
    runner = BusWorker(ingestor, options, replay=replay)
    pruner = Retention(OPTIONS.load().retention, store, ingestor, findings=False)  # graphs

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runner.stop)
        if claim:
            console.print(f"worker claiming among {partitions} partitions on {bus}")
        else:
            console.print(f"worker of partition {partition}/{partitions} on {bus}")
        await runner.run()

    server = None
    if listen is not None:
        metrics = WorkerMetrics(runner.counters, ingestor.checkpoints)
        server, _ = start_http_server(listen[1], listen[0], registry=metrics.registry)
    pruner.start()
    try:
        asyncio.run(main())
    finally:
        if server is not None:
            server.shutdown()
        pruner.stop()
        ingestor.close()
        store.close()
        console.print(f"worker stopped: {runner.counters}; checkpoints: {ingestor.checkpoints}")


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"{text!r} is not HOST:PORT", param_hint="--metrics-listen")
    return host, int(port)


def register(app: typer.Typer, *, panel: str) -> None:
    app.command(rich_help_panel=panel)(worker)
