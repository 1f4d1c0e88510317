"""Cut background work out of a lab recording: the processes whose command line holds one of
the markers, their descendants, and what the lineage context reads about their ancestors.

usage: extract_background.py EVENTS.ndjson.gz OUT.ndjson.gz MARKER...

Keeps every event of each process whose command line (in any of its events) contains a
MARKER and of its descendants (by fork), except read-only opens under NOISE; of their
ancestors only fork, exec, listen and accept. Lines are re-encoded compactly, in order,
otherwise unchanged.
"""

import gzip
import json
import sys

NOISE = ("/usr/share/", "/usr/lib/", "/lib/", "/etc/ld.so.cache", "/proc/", "/sys/")
ANCESTOR_ACTIONS = ("fork", "exec", "listen", "accept")


def main(source: str, out: str, markers: list[str]) -> None:
    with gzip.open(source, "rt") as lines:
        events = [json.loads(line) for line in lines]
    parents: dict[str, str] = {}
    members: set[str] = set()
    for event in events:
        process = event["process"]
        parent = (process.get("parent") or {}).get("entity_id")
        if parent:
            parents.setdefault(process["entity_id"], parent)
        if any(marker in process.get("command_line", "") for marker in markers):
            members.add(process["entity_id"])
    for event in events:
        parent = (event["process"].get("parent") or {}).get("entity_id")
        if event["event"]["action"] == "fork" and parent in members:
            members.add(event["process"]["entity_id"])
    ancestors: set[str] = set()
    for member in members:
        current = member
        while current in parents and parents[current] not in ancestors:
            current = parents[current]
            ancestors.add(current)
    ancestors -= members
    kept = 0
    with gzip.open(out, "wt") as target:
        for event in events:
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
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
