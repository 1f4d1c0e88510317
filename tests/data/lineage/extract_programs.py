"""Cut the runs of some programs, and what they ran, out of a corpus chunk.

usage: extract_programs.py CHUNK/events.ndjson.gz PROGRAM[,PROGRAM...] OUT.ndjson.gz

Keeps every event of each process that executes one of the PROGRAMs (by the executable's
file name, e.g. ``useradd,userdel``) and of its descendants, except read-only opens under
NOISE; of their ancestors (the shell that ran them, the recipe, the recorder) only what the
lineage context reads about them: fork, exec, listen, accept. Reads the chunk twice (it does
not fit in memory as objects); lines are re-encoded compactly, in order, otherwise unchanged.
"""

import gzip
import json
import posixpath
import sys
from collections.abc import Iterator

NOISE = (
    "/usr/share/", "/usr/lib/", "/lib/", "/usr/local/", "/var/cache/", "/var/lib/dpkg/info/",
    "/etc/ld.so.cache", "/proc/", "/sys/", "/tmp/tmp", "/usr/include/",
)  # fmt: skip
ANCESTOR_ACTIONS = ("fork", "exec", "listen", "accept")


def _events(source: str) -> Iterator[dict]:
    with gzip.open(source, "rt") as lines:
        for line in lines:
            yield json.loads(line)


def main(source: str, programs: str, out: str) -> None:
    wanted = set(programs.split(","))
    parents: dict[str, str] = {}
    members: set[str] = set()
    for event in _events(source):
        process = event["process"]
        entity = process["entity_id"]
        parent = (process.get("parent") or {}).get("entity_id")
        if parent:
            parents.setdefault(entity, parent)
        action = event["event"]["action"]
        runs_one = posixpath.basename(process.get("executable", "")) in wanted
        if (action == "exec" and runs_one) or (action == "fork" and parent in members):
            members.add(entity)
    ancestors = set()
    for member in members:
        current = parents.get(member)
        while current and current not in ancestors:
            ancestors.add(current)
            current = parents.get(current)
    ancestors -= members
    kept = 0
    with gzip.open(out, "wt") as target:
        for event in _events(source):
            entity, action = event["process"]["entity_id"], event["event"]["action"]
            path = (event.get("file") or {}).get("path", "")
            if entity in members:
                if action == "open" and path.startswith(NOISE):
                    continue
            elif entity not in ancestors or action not in ANCESTOR_ACTIONS:
                continue
            target.write(json.dumps(event, separators=(",", ":")) + "\n")
            kept += 1
    print(f"kept {kept} events of {len(members)} processes", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:4])
