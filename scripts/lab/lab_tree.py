"""Cut the lab's own process tree out of datasets recorded on a shared machine.

    .venv/bin/python scripts/lab/lab_tree.py SOURCE TARGET

Every dataset directory under SOURCE that ``scripts/lab/record_protocol.sh`` recorded (it
left DIR.runner beside it, the pid of the ``lab run`` process) is written to the same
relative place under TARGET by :func:`provarmor.evaluation.lab_tree.keep_lab_tree`. A
dataset already cut is kept, so a re-run cuts only new recordings. One line per dataset:
events kept of the machine's, processes kept, and how many of the attacker's labelled
processes the cut left out (read here, after the cut, only to check it: it must be 0).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from provarmor.evaluation.dataset import META_FILE, load_dataset
from provarmor.evaluation.lab_tree import keep_lab_tree
from provarmor.model.errors import ProvArmorError


def _runner_pid(dataset: Path) -> int:
    path = dataset.with_name(dataset.name + ".runner")
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: no runner pid ({error})") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    failed = 0
    for meta in sorted(args.source.rglob(META_FILE)):
        source = meta.parent
        target = args.target / source.relative_to(args.source)
        if (target / META_FILE).exists():
            continue
        try:
            report = keep_lab_tree(source, target, runner_pid=_runner_pid(source))
        except ProvArmorError as error:
            sys.stderr.write(f"FAILED {source}: {error}\n")
            failed += 1
            continue
        labelled = set(load_dataset(source).labels.processes)
        kept = {event.process.entity_id for event in load_dataset(target).events()}
        sys.stdout.write(
            f"{target}: kept {report.kept_events:,} of {report.machine_events:,} events, "
            f"{report.kept_processes:,} processes; attacker processes left out: "
            f"{len(labelled - kept)} of {len(labelled)}\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
