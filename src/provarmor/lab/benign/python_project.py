"""Benign: a developer, logged in over ssh with a terminal, byte-compiles a Python package
and runs its unit tests."""

from __future__ import annotations

import random

from provarmor.lab.context import PYTHON
from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload

_MODULE = "def slug(text):\n    return '-'.join(text.lower().split())\n"
_TESTS = """import unittest
from {package}.text import slug
class SlugTest(unittest.TestCase):
    def test_spaces(self):
        self.assertEqual(slug("Hello  World"), "hello-world")
    def test_empty(self):
        self.assertEqual(slug(""), "")
"""


def run(env: LabEnvironment, rng: random.Random) -> None:
    package = rng.choice(("textkit", "slugger", "wordy")) + str(rng.randrange(10, 99))
    root = f"~/projects/py-{package}"
    command = (
        f"mkdir -p {root}/{package} {root}/tests && cd {root} && "
        f"touch {package}/__init__.py tests/__init__.py && "
        f"printf '%s' \"{_MODULE}\" > {package}/text.py && "
        f"cat > tests/test_text.py <<'EOF'\n{_TESTS.format(package=package)}EOF\n"
        f"{PYTHON} -m compileall -q {package} && {PYTHON} -m unittest discover -s tests -t . -q"
    )
    env.type_command(env.ctx.dev_user, command, timeout=60, check=True)


WORKLOAD = Workload(
    name="python-project",
    title="Byte-compile a Python package and run its tests",
    description="The developer lays out a small Python package with tests, byte-compiles it with "
    "compileall and runs unittest discovery.",
    looks_like="interpreters writing and loading fresh code",
    run=run,
)
