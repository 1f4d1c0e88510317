"""Benign: a developer, logged in over ssh with a terminal, edits source files the way
editors save (temp file, rename), greps, diffs and compiles."""

from __future__ import annotations

import random

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload


def run(env: LabEnvironment, rng: random.Random) -> None:
    name = rng.choice(("queue", "cache", "router", "buffer")) + str(rng.randrange(10, 99))
    folder = f"~/projects/edit-{name}"
    value = rng.randrange(2, 64)
    command = f"""set -e
mkdir -p {folder} && cd {folder}
printf 'int size(void) {{ return 1; }} /* TODO tune */\\n' > {name}.c
cp {name}.c .{name}.c.orig
sed 's/return 1/return {value}/' {name}.c > .{name}.c.swp && mv .{name}.c.swp {name}.c
grep -rn TODO . || true
diff -u .{name}.c.orig {name}.c || true
gcc -c -O2 -o {name}.o {name}.c && ls -la
rm -f .{name}.c.orig
"""
    env.type_command(env.ctx.dev_user, command, timeout=60, check=True)


WORKLOAD = Workload(
    name="developer-edit",
    title="Edit and compile",
    description="The developer edits a C file as an editor saves (write a swap file, rename it "
    "over the original), greps for TODOs, diffs against the original and compiles.",
    looks_like="hidden temporary files and renames over existing files",
    run=run,
)
