"""Cut one task of the corpus recipe, typed in a root ssh session, out of a corpus chunk.

usage: extract_session.py CHUNK/events.ndjson.gz MARKER OUT.ndjson.gz

Keeps every event of the first ``bash`` whose first arguments contain MARKER (the recipe
copy the session ran, e.g. ``pkg:memcached``) and of its descendants, except read-only
opens under NOISE and the man-db trigger's ``mandb`` (it only reads manual pages); of its
ancestors (the session's shell, sshd's session processes, the listening sshd, the recipe)
only what the lineage context reads about them: fork, exec, listen, accept. Lines are
re-encoded compactly, in order, otherwise unchanged.
"""

import gzip
import json
import sys

NOISE = (
    "/usr/share/", "/usr/lib/", "/lib/", "/usr/local/", "/var/cache/", "/var/lib/dpkg/info/",
    "/etc/ld.so.cache", "/proc/", "/sys/", "/tmp/tmp", "/usr/include/",
)  # fmt: skip
ANCESTOR_ACTIONS = ("fork", "exec", "listen", "accept")


def main(source: str, marker: str, out: str) -> None:
    with gzip.open(source, "rt") as lines:
        events = [json.loads(line) for line in lines]
    parents: dict[str, str] = {}
    start = ""
    for event in events:
        process = event["process"]
        parent = (process.get("parent") or {}).get("entity_id")
        if parent:
            parents.setdefault(process["entity_id"], parent)
        args = process.get("args", [])[:5]
        if not start and process.get("name") == "bash" and any(marker in a for a in args):
            start = process["entity_id"]
    ancestors, current = set(), start
    while current in parents:
        current = parents[current]
        ancestors.add(current)
    members = {start}
    for event in events:
        parent = (event["process"].get("parent") or {}).get("entity_id")
        if event["event"]["action"] == "fork" and parent in members:
            members.add(event["process"]["entity_id"])
    kept = 0
    with gzip.open(out, "wt") as target:
        for event in events:
            entity, action = event["process"]["entity_id"], event["event"]["action"]
            path = (event.get("file") or {}).get("path", "")
            if entity in members:
                noise = action == "open" and path.startswith(NOISE)
                if noise or event["process"].get("name") == "mandb":
                    continue
            elif entity not in ancestors or action not in ANCESTOR_ACTIONS:
                continue
            target.write(json.dumps(event, separators=(",", ":")) + "\n")
            kept += 1
    print(f"kept {kept} events of {len(members)} processes", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:4])
