"""Benign: a test run in a developer's ssh login with a terminal: a unittest suite plus a
shell test script comparing outputs."""

from __future__ import annotations

import random

from provarmor.lab.context import PYTHON
from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload

_SUITE = """import json, os, tempfile, unittest
class Storage(unittest.TestCase):
    def test_roundtrip(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "data.json")
            with open(path, "w") as handle:
                json.dump({"n": %(n)d}, handle)
            with open(path) as handle:
                self.assertEqual(json.load(handle)["n"], %(n)d)
    def test_sorting(self):
        self.assertEqual(sorted([3, 1, 2]), [1, 2, 3])
if __name__ == "__main__":
    unittest.main()
"""
_SCRIPT = """set -e
printf 'b\\na\\nc\\n' | sort > got.txt
printf 'a\\nb\\nc\\n' > want.txt
diff -u want.txt got.txt
grep -c . got.txt
echo ok
"""


def run(env: LabEnvironment, rng: random.Random) -> None:
    folder = f"~/projects/tests-{rng.randrange(100, 999)}"
    command = (
        f"mkdir -p {folder} && cd {folder} && cat > test_storage.py <<'EOF'\n"
        f"{_SUITE % {'n': rng.randrange(1000)}}EOF\n"
        f"cat > check.sh <<'EOF'\n{_SCRIPT}EOF\n"
        f"{PYTHON} -m unittest -q test_storage && sh check.sh && rm -f got.txt want.txt"
    )
    env.type_command(env.ctx.dev_user, command, timeout=60, check=True)


WORKLOAD = Workload(
    name="test-suite",
    title="Run a test suite",
    description="A unittest suite that writes and reads temporary files, and a shell test script "
    "that compares outputs with diff and grep.",
    looks_like="many short-lived processes touching temporary files",
    run=run,
)
