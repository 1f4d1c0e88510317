"""Regenerate ``src/provarmor/data/attack.json``, the compact ATT&CK table shipped with ProvArmor.

Inputs (both read-only, from the shared data set):

* ``enterprise-attack-v18.1.json``: tactics (id, name, shortname) and techniques (id, name,
  tactic shortnames, revoked/deprecated flags) of ATT&CK Enterprise v18.1;
* ``v19-renumbering.csv``: ``v19_id,old_id,name`` rows for the techniques ATT&CK v19 moved to
  new ids.

The output keeps, per technique, its name, its tactic ids and the id of the same technique in
the other numbering (``same_as``), so that rules tagged with either the v18 or the v19 id
resolve. v19 split Defense Evasion (TA0005) into Stealth and Defense Impairment; the inputs
carry no ids for those two, so they are listed under TA0005 with their v19 names.

Usage::

    python scripts/build_attack_table.py [--attack FILE] [--renumbering FILE] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

FORMAT_VERSION = 1
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "attack"
DEFAULT_ATTACK = SHARED / "enterprise-attack-v18.1.json"
DEFAULT_RENUMBERING = SHARED / "v19-renumbering.csv"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "provarmor" / "data" / "attack.json"

SPLIT_TACTICS = (
    # (shortname, v19 name, v18 tactic it was split from)
    ("stealth", "Stealth", "TA0005"),
    ("defense-impairment", "Defense Impairment", "TA0005"),
)


def build_table(attack: dict[str, object], renumbering: list[dict[str, str]]) -> dict[str, object]:
    """The compact table as a JSON-ready dict."""
    raw_tactics = attack["tactics"]
    raw_techniques = attack["techniques"]
    assert isinstance(raw_tactics, list)
    assert isinstance(raw_techniques, list)
    tactic_id = {t["shortname"]: t["id"] for t in raw_tactics}
    tactics = [{"id": t["id"], "name": t["name"], "shortname": t["shortname"]} for t in raw_tactics]
    tactics += [{"id": old, "name": name, "shortname": short} for short, name, old in SPLIT_TACTICS]
    techniques = _techniques(raw_techniques, tactic_id=tactic_id, renumbering=renumbering)
    return {
        "format_version": FORMAT_VERSION,
        "attack_version": str(attack["attack_version"]),
        "renumbering": "v19",
        "tactics": tactics,
        "techniques": [techniques[key] for key in sorted(techniques)],
    }


def _techniques(
    raw_techniques: list[dict[str, object]],
    *,
    tactic_id: dict[str, str],
    renumbering: list[dict[str, str]],
) -> dict[str, dict[str, object]]:
    """Technique id -> entry, for the v18 ids and the v19 ids of renumbered techniques."""
    old_to_new = {row["old_id"]: row["v19_id"] for row in renumbering}
    techniques: dict[str, dict[str, object]] = {}
    for raw in raw_techniques:
        technique_id = str(raw["id"])
        names = raw["tactics"]
        assert isinstance(names, list)
        entry: dict[str, object] = {
            "id": technique_id,
            "name": raw["name"],
            "tactics": [tactic_id[name] for name in names if name in tactic_id],
        }
        if technique_id in old_to_new:
            entry["same_as"] = old_to_new[technique_id]
        for flag in ("revoked", "deprecated"):
            if raw.get(flag):
                entry[flag] = True
        techniques[technique_id] = entry
    for row in renumbering:
        old = techniques[row["old_id"]]
        techniques[row["v19_id"]] = {
            "id": row["v19_id"],
            "name": row["name"],
            "tactics": old["tactics"],
            "same_as": row["old_id"],
        }
    return techniques


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attack", type=Path, default=DEFAULT_ATTACK)
    parser.add_argument("--renumbering", type=Path, default=DEFAULT_RENUMBERING)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    attack = json.loads(args.attack.read_text(encoding="utf-8"))
    with args.renumbering.open(encoding="utf-8", newline="") as handle:
        renumbering = list(csv.DictReader(handle))
    table = build_table(attack, renumbering)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(table, indent=None, separators=(",", ":"), ensure_ascii=False)
    args.out.write_text(text.replace('},{"id"', '},\n{"id"') + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
