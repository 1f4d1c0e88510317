"""Rebuild tests/data/spool/v1 (spool format version 1) from a real audit capture.

Run from the repository root: ``.venv/bin/python tests/data/spool/make_v1.py``. Only needed
if the fixture is lost; a new format version gets a new directory and a new script, and the
old fixture stays as it is so the reader keeps being tested against it.
"""

import shutil
from pathlib import Path

from provarmor.agent.spool import Spool
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.registry import IMPORTERS

HERE = Path(__file__).resolve().parent
CAPTURE = HERE.parent / "auditd" / "curl_http.log"
TARGET = HERE / "v1"


def main() -> None:
    report = IngestReport(source="auditd")
    host = HostContext(id="fixture-host")
    events = list(IMPORTERS["auditd"](CAPTURE, report=report, host=host))[:20]
    shutil.rmtree(TARGET, ignore_errors=True)
    with Spool(TARGET, max_bytes=1 << 20, segment_bytes=4096, fsync=True) as spool:
        spool.append(events[:8])
        spool.append(events[8:])
        batch = spool.read("default", 11)
        spool.ack("default", batch.position)
    (TARGET / "spool.lock").unlink()


if __name__ == "__main__":
    main()
