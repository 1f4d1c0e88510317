"""Benign: a developer, logged in over ssh with a terminal, builds a small C project with
make and gcc, runs it, cleans up."""

from __future__ import annotations

import random

from provarmor.lab.environment import LabEnvironment
from provarmor.lab.workload import Workload

_MAIN = r"""#include <stdio.h>
#include "util.h"
int main(void) { printf("sum=%d\n", add(A, B)); return 0; }
"""
_UTIL = "int add(int a, int b) { return a + b; }\n"
_HEADER = "int add(int a, int b);\n"
_MAKEFILE = """CFLAGS=-O2 -Wall
%(name)s: main.o util.o
\t$(CC) $(CFLAGS) -o $@ main.o util.o
clean:
\trm -f *.o %(name)s
"""


def run(env: LabEnvironment, rng: random.Random) -> None:
    name = rng.choice(("calc", "stats", "parser", "encoder")) + str(rng.randrange(10, 99))
    folder = f"~/projects/{name}"
    files = {
        "main.c": _MAIN.replace("A", str(rng.randrange(100))).replace("B", str(rng.randrange(9))),
        "util.c": _UTIL,
        "util.h": _HEADER,
        "Makefile": _MAKEFILE % {"name": name},
    }
    writes = " && ".join(f"printf '%s' '{text}' > {file}" for file, text in files.items())
    env.type_command(
        env.ctx.dev_user,
        f"mkdir -p {folder} && cd {folder} && {writes} && make -j2 && ./{name} && make clean",
        timeout=60,
        check=True,
    )


WORKLOAD = Workload(
    name="build-c-project",
    title="Build a C project",
    description="The developer writes a small C project (two units, a header, a Makefile), builds "
    "it with make -j2 and gcc, runs the program and runs make clean.",
    looks_like="compile after delivery (gcc writing and running a fresh binary)",
    run=run,
)
