"""Fail when a module under src/provarmor has no test file at the mirrored path
(src/provarmor/a/b.py -> tests/provarmor/a/test_b.py), in mitmproxy's style."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXEMPT_NAMES = {"__init__.py", "__main__.py", "settings.py"}
EXEMPT_DIRS = {"testing", "data"}


def missing_tests() -> list[str]:
    source_root = ROOT / "src" / "provarmor"
    missing = []
    for module in sorted(source_root.rglob("*.py")):
        relative = module.relative_to(source_root)
        if module.name in EXEMPT_NAMES or relative.parts[0] in EXEMPT_DIRS:
            continue
        expected = ROOT / "tests" / "provarmor" / relative.parent / f"test_{module.name}"
        if not expected.exists():
            missing.append(f"{relative} -> {expected.relative_to(ROOT)}")
    return missing


if __name__ == "__main__":
    problems = missing_tests()
    for line in problems:
        sys.stderr.write(f"no test file: {line}\n")
    sys.exit(1 if problems else 0)
