"""Cut a fixture from a lab run recorded on the shared machine (see ../README.md).

usage: extract.py DATASET FROM TO OUT [PID...]

Copies DATASET's events from FROM to TO seconds after its first event, its labels.json and
transcript.log, and derives entity-labels.json and dataset.json for the excerpt the way
``provarmor lab run`` does for a whole recording. Without PIDs every process's events are
kept; with them, only those of the processes with these pids and their descendants.
"""

import gzip
import json
import shutil
import sys
from pathlib import Path

import msgspec

from provarmor.evaluation.dataset import EntityLabels, load_dataset
from provarmor.evaluation.labels import label_events

source, out = Path(sys.argv[1]), Path(sys.argv[4])
begin, end = float(sys.argv[2]) * 1e9, float(sys.argv[3]) * 1e9
roots = {int(pid) for pid in sys.argv[5:]}
tree: set[str] = set()


def chosen(event: dict) -> bool:
    process = event["process"]
    parent = (process.get("parent") or {}).get("entity_id")
    if not roots or process["entity_id"] in tree or process["pid"] in roots or parent in tree:
        tree.add(process["entity_id"])
        return True
    return False


out.mkdir(parents=True)
excerpt = []
with gzip.open(source / "events.ndjson.gz", "rt") as lines:
    start = None
    for line in lines:
        event = json.loads(line)
        start = event["@timestamp"] if start is None else start
        if event["@timestamp"] - start > end:
            break
        if event["@timestamp"] - start >= begin and chosen(event):
            excerpt.append(line)
with gzip.open(out / "events.ndjson.gz", "wt", compresslevel=9) as target:
    target.writelines(excerpt)
for name in ("labels.json", "transcript.log"):
    shutil.copyfile(source / name, out / name)
meta = json.loads((source / "dataset.json").read_text())
(out / "dataset.json").write_text(json.dumps({**meta, "events": len(excerpt)}, indent=2) + "\n")
(out / "entity-labels.json").write_text("{}\n")
dataset = load_dataset(out)
labels = label_events(list(dataset.events()), dataset.truth)
entity = EntityLabels(**{k: sorted(getattr(labels, k)) for k in EntityLabels.__struct_fields__})
(out / "entity-labels.json").write_bytes(msgspec.json.format(msgspec.json.encode(entity), indent=2))
