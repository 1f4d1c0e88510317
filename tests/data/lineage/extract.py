"""Keep the events of the process trees started by a recording script (see README.md).

usage: extract.py RECORDED.ndjson SCRIPT_NAME OUT.ndjson.gz

A process belongs when its argv names SCRIPT_NAME (the script's shell) or its parent
belongs (as its fork names it, or its first event when the sensor lost the fork). Lines are
copied unchanged, in order, except read-only opens under NOISE (system libraries and data,
package caches, a virtual environment's library tree), which are left out to keep the
fixture small: no rule or context reads them.
"""

import gzip
import json
import sys

recorded, script, out = sys.argv[1:4]
NOISE = (
    "/usr/share/", "/usr/lib/", "/lib/", "/usr/local/", "/var/cache/", "/var/lib/dpkg/info/",
    "/etc/ld.so.cache", "/proc/", "/sys/", "/tmp/tmp",
)  # fmt: skip
members: set[str] = set()
kept = 0
with open(recorded, "rb") as source, gzip.open(out, "wb") as target:
    for line in source:
        event = json.loads(line)
        process = event.get("process", {})
        entity = process.get("entity_id", "")
        parent = (process.get("parent") or {}).get("entity_id", "")
        if any(script in arg for arg in process.get("args", [])[:2]) or (
            event["event"]["action"] == "fork" and parent in members
        ):
            members.add(entity)
        path = (event.get("file") or {}).get("path", "")
        noise = path.startswith(NOISE) or "venv/lib/" in path
        if entity in members and not (event["event"]["action"] == "open" and noise):
            target.write(line)
            kept += 1
print(f"kept {kept} events of {len(members)} processes", file=sys.stderr)
