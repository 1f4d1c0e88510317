"""Tell a recorded file's format from its first records, so commands need no ``--format``
when the content leaves no doubt.

Only the first few non-empty lines are read (plain or gzip). A file whose first records fit
no importer, or fit one importer on one line and another on the next, is not guessed: the
caller asks for ``--format`` instead. This module reads files but never parses whole records
beyond what telling the format needs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from provarmor.sources.lines import iter_lines, open_binary

SNIFF_LINES = 5
"""How many non-empty lines must agree on one format."""

_AUDIT_RECORD = re.compile(rb"^(node=\S+ )?type=\S+ msg=audit\(\d+\.\d+:\d+\)")
_SYSLOG_LINE = re.compile(
    rb"^(?:<\d{1,3}>1 \S+ \S+ \S+ \S+ \S+ "
    rb"|(?:<\d{1,3}>)?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* \S+ [^\s\[:]+(?:\[\d+\])?: "
    rb"|(?:<\d{1,3}>)?[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ [^\s\[:]+(?:\[\d+\])?: )"
)


def _line_format(line: bytes) -> str | None:
    if _AUDIT_RECORD.match(line):
        return "auditd"
    if _SYSLOG_LINE.match(line):
        return "syslog"
    if not line.startswith(b"{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    if "datum" in record:
        return "cdm"
    if "evt.type" in record:
        return "sysdig"
    if "__REALTIME_TIMESTAMP" in record and "MESSAGE" in record:
        return "journal"
    if "@timestamp" in record and isinstance(record.get("event"), dict):
        return "ndjson"
    return None


def sniff_format(path: Path) -> str | None:
    """The importer name every one of the first non-empty lines of ``path`` fits, or None
    when they fit none, disagree, or the file cannot be read."""
    found: set[str | None] = set()
    seen = 0
    try:
        with open_binary(path) as handle:
            for _number, line in iter_lines(handle, source=str(path)):
                if not line.strip():
                    continue
                found.add(_line_format(line.strip()))
                seen += 1
                if seen == SNIFF_LINES or len(found) > 1:
                    break
    except (OSError, EOFError):
        return None
    if len(found) != 1:
        return None
    (name,) = found
    return name
