"""Where the agent's events go: a sink takes a batch read from the spool and commits it
together with the spool position it reached, so a restart resumes exactly after the last
committed batch: no loss, no duplicate.

* :class:`GraphSink`: the provenance graph in the local SQLite store (position stored in
  the same transaction as the graph delta).
* :class:`NdjsonSink`: canonical NDJSON for datasets (position and file length stored in a
  sidecar file; on restart the file is cut back to the committed length).

Learning mode's sink is :class:`~provarmor.agent.learning_sink.LearningSink`.
"""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path
from typing import Protocol

from provarmor.agent.spool import SpoolPosition
from provarmor.graph.builder import BuilderLimits, GraphBuilder
from provarmor.graph.settings import GraphSettings
from provarmor.model.codec import encode_ndjson
from provarmor.model.errors import StorageError
from provarmor.model.event import Event
from provarmor.storage.sqlite_graph import SqliteGraphStore

FULL_DRAIN_SECONDS = 10.0


class Sink(Protocol):
    name: str

    def committed(self) -> SpoolPosition | None:
        """The spool position of the last committed batch (``None``: nothing yet)."""

    def write(self, events: list[Event], position: SpoolPosition) -> None:
        """Commit ``events``; afterwards :meth:`committed` returns ``position``."""

    def close(self) -> None: ...


def encode_position(position: SpoolPosition) -> str:
    return json.dumps(
        {"sequence": position.sequence, "segment": position.segment, "offset": position.offset}
    )


def decode_position(text: str, *, location: str) -> SpoolPosition:
    try:
        data = json.loads(text)
        return SpoolPosition(
            sequence=int(data["sequence"]), segment=int(data["segment"]), offset=int(data["offset"])
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"unreadable spool position: {exc}", location=location) from None


class GraphSink:
    name = "graph"
    META_KEY = "agent_spool_position"

    def __init__(self, path: Path, *, settings: GraphSettings | None = None) -> None:
        graph = settings or GraphSettings()
        self.store = SqliteGraphStore(path)
        self.builder = GraphBuilder(
            limits=BuilderLimits(max_nodes=graph.max_nodes, max_open_edges=graph.max_open_edges),
            next_edge_id=self.store.next_edge_id(),
            index_events=graph.index_events,
        )
        self._last_full = time.monotonic()

    def committed(self) -> SpoolPosition | None:
        text = self.store.meta(self.META_KEY)
        return None if text is None else decode_position(text, location=self.store.path)

    def write(self, events: list[Event], position: SpoolPosition) -> None:
        add = self.builder.add
        for event in events:
            add(event)
        full = time.monotonic() - self._last_full > FULL_DRAIN_SECONDS
        if full:
            self._last_full = time.monotonic()
        self.store.apply(
            self.builder.drain(full=full), meta={self.META_KEY: encode_position(position)}
        )
        self.builder.evict()
        gc.freeze()  # long-lived graph state: keep it out of the cyclic collector's scans

    def close(self) -> None:
        self.store.apply(self.builder.drain(full=True))
        self.store.close()


class NdjsonSink:
    name = "out"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sidecar = path.with_name(path.name + ".position")
        self._position: SpoolPosition | None = None
        length = 0
        if self._sidecar.exists():
            data = json.loads(self._sidecar.read_text())
            self._position = decode_position(
                json.dumps(data["position"]), location=str(self._sidecar)
            )
            length = int(data["length"])
        self._file = path.open("ab")
        if self._file.tell() > length:
            self._file.truncate(length)  # written after the last commit: delivered again
        self._file.seek(0, os.SEEK_END)

    def committed(self) -> SpoolPosition | None:
        return self._position

    def write(self, events: list[Event], position: SpoolPosition) -> None:
        self._file.write(encode_ndjson(events))
        self._file.flush()
        temporary = self._sidecar.with_name(self._sidecar.name + ".tmp")
        temporary.write_text(
            json.dumps(
                {"position": json.loads(encode_position(position)), "length": self._file.tell()}
            )
        )
        os.replace(temporary, self._sidecar)
        self._position = position

    def close(self) -> None:
        self._file.close()
