"""Lab datasets for tests: disjoint time slices of a real recording, without labels.

Training and validation data must be benign and separate; tests that have one small real
benign recording cut it in two with :func:`benign_slice` instead of inventing events.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from provarmor.evaluation.dataset import EVENTS_FILE, META_FILE


def benign_slice(source: Path, target: Path, *, start: float, stop: float) -> Path:
    """Write the events between fractions ``start`` and ``stop`` of ``source`` (a benign
    dataset directory) as a new dataset at ``target``: events and metadata only."""
    lines = gzip.decompress((source / EVENTS_FILE).read_bytes()).splitlines()
    chosen = lines[int(len(lines) * start) : int(len(lines) * stop)]
    target.mkdir(parents=True)
    (target / EVENTS_FILE).write_bytes(gzip.compress(b"\n".join(chosen) + b"\n"))
    meta = json.loads((source / META_FILE).read_text())
    first, last = json.loads(chosen[0])["@timestamp"], json.loads(chosen[-1])["@timestamp"]
    meta.update(events=len(chosen), started_ns=first, ended_ns=last)
    (target / META_FILE).write_text(json.dumps(meta))
    return target
