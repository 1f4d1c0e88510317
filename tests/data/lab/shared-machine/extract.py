"""Cut the fixture ``run/`` from a lab run recorded on the shared machine (see ../README.md).

usage: extract.py DATASET SECONDS OUT

Copies the first SECONDS of DATASET's events (everybody's: no process is chosen), its
labels.json and transcript.log, and derives entity-labels.json and dataset.json for the
excerpt the way ``provarmor lab run`` does for a whole recording.
"""

import gzip
import json
import shutil
import sys
from pathlib import Path

import msgspec

from provarmor.evaluation.dataset import EntityLabels, load_dataset
from provarmor.evaluation.labels import label_events

source, seconds, out = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
out.mkdir(parents=True)
with gzip.open(source / "events.ndjson.gz", "rt") as lines:
    first = next(lines)
    start = json.loads(first)["@timestamp"]
    excerpt = [first]
    for line in lines:
        if json.loads(line)["@timestamp"] - start > seconds * 1e9:
            break
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
