"""A real burst of ordinary work for the agent benchmark (root; run it under the live lock).

Four steps, each real software doing what it does on a server, one after the other:

* ``apt``: ``apt-get install -y --reinstall`` of a daemon package with maintainer scripts
  (redis-server by default: adduser, dpkg triggers, man-db, a service start attempt), then,
  when it was not installed before, ``apt-get purge`` of it and of the packages apt itself
  named as new for it (nothing that was there before is ever removed);
* ``make``: ``make -j2`` of a small C project (one unit per module, each including the usual
  system headers; gcc runs cc1, as and collect2/ld with temp files in /tmp);
* ``pip``: a fresh venv in /tmp, then ``pip install`` of an sdist with a C extension, built
  from source (setuptools, gcc, a wheel built and unpacked);
* ``installer``: ``curl -fsSL http://127.0.0.1:PORT/install.sh | bash`` from a local HTTP
  server: the script downloads a tarball, unpacks it, writes a config and runs the tool.

Nothing leaves the machine: the package comes from apt's cache when it is there (else from
the configured Debian mirror, as any apt-get), the server listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

NEVER_PURGE = ("auditd", "bpftrace", "openssh", "postgresql", "python3", "chromium", "git", "gcc")
"""Prefixes of packages the project needs: never purged, whatever the install pulled in."""
STEPS = ("apt", "make", "pip", "installer")

_MODULE = """#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/stat.h>
#include "lib.h"

int unit_%(n)d(const char *text)
{
    struct stat info;
    char *copy = strdup(text);
    int total = (int)strlen(copy) + %(n)d;
    if (stat(copy, &info) == 0) { total += (int)info.st_size; }
    free(copy);
    return total;
}
"""
_SETUP = """from setuptools import Extension, setup
setup(name="burstext", version="1.0", ext_modules=[Extension("burstext", ["burstext.c"])])
"""
_EXTENSION = """#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyObject *twice(PyObject *self, PyObject *args) {
    long value;
    if (!PyArg_ParseTuple(args, "l", &value)) { return NULL; }
    return PyLong_FromLong(2 * value);
}
static PyMethodDef methods[] = {{"twice", twice, METH_VARARGS, "2x"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "burstext", NULL, -1, methods};
PyMODINIT_FUNC PyInit_burstext(void) { return PyModule_Create(&module); }
"""
_INSTALLER = """#!/bin/bash
set -euo pipefail
prefix=%(prefix)s
mkdir -p "$prefix/bin" "$prefix/etc"
curl -fsSL http://127.0.0.1:%(port)d/tool.tar.gz -o "$prefix/tool.tar.gz"
tar -xzf "$prefix/tool.tar.gz" -C "$prefix"
sha256sum "$prefix/tool.tar.gz" > "$prefix/SHA256SUMS"
install -m 0755 "$prefix/tool/tool.sh" "$prefix/bin/tool"
printf 'listen = 127.0.0.1\\nworkers = %%s\\n' "$(nproc)" > "$prefix/etc/tool.conf"
for i in $(seq 1 30); do "$prefix/bin/tool" "$i" >> "$prefix/install.log"; done
id -un; uname -a; grep -c processor /proc/cpuinfo
"""
_TOOL = '#!/bin/sh\necho "tool run $1 on $(hostname) at $(date +%s)"\n'


def run_steps(
    work: Path, *, steps: tuple[str, ...] = STEPS, package: str = "redis-server", modules: int = 48
) -> dict[str, float]:
    """Run the chosen steps in ``work``; returns each step's wall time in seconds."""
    actions: dict[str, Callable[[], None]] = {
        "apt": lambda: apt_reinstall(package),
        "make": lambda: parallel_make(work / "cproject", modules),
        "pip": lambda: pip_source_build(work / "pip"),
        "installer": lambda: curl_bash_installer(work / "installer"),
    }
    times: dict[str, float] = {}
    for step in steps:
        began = time.monotonic()
        actions[step]()
        times[step] = time.monotonic() - began
    return times


def _installed(package: str) -> bool:
    status = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return status.stdout.startswith("ii")


def apt_reinstall(package: str) -> None:
    """Install (or reinstall) ``package``; when it was not installed before, purge it and
    the packages apt named as NEW for it (read from a dry run first, never from the list of
    installed packages, which other work on the machine changes meanwhile)."""
    apt = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=120"]
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    install = ["install", "--reinstall", package]
    plan = subprocess.run([*apt, "-s", *install], env=env, check=True, capture_output=True)
    new = [
        line.split()[1]
        for line in plan.stdout.decode().splitlines()
        if line.startswith("Inst ") and "[" not in line.split("(", 1)[0]
    ]
    kept = [name for name in new if name.startswith(NEVER_PURGE)]
    if kept:
        raise RuntimeError(f"installing {package} would add {kept}; choose another package")
    was_installed = _installed(package)
    subprocess.run([*apt, *install], env=env, check=True, capture_output=True)
    if not was_installed:
        purge = sorted({package, *new})
        subprocess.run([*apt, "purge", *purge], env=env, check=True, capture_output=True)


def parallel_make(folder: Path, modules: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"unit{n}" for n in range(modules)]
    for n, name in enumerate(names):
        (folder / f"{name}.c").write_text(_MODULE % {"n": n})
    (folder / "lib.h").write_text("".join(f"int unit_{n}(const char *);\n" for n in range(modules)))
    calls = " + ".join(f"unit_{n}(argv[0])" for n in range(modules))
    (folder / "main.c").write_text(
        '#include "lib.h"\n#include <stdio.h>\n'
        f'int main(int argc, char **argv) {{ printf("%d\\n", {calls}); return argc - 1; }}\n'
    )
    objects = " ".join(f"{name}.o" for name in [*names, "main"])
    (folder / "Makefile").write_text(
        f"CFLAGS = -O1 -Wall\nprogram: {objects}\n\t$(CC) $(CFLAGS) -o $@ {objects}\n"
        "%.o: %.c lib.h\n\t$(CC) $(CFLAGS) -c -o $@ $<\n"
    )
    subprocess.run(["make", "-s", "-j2"], cwd=folder, check=True, capture_output=True)
    subprocess.run(["./program"], cwd=folder, check=True, capture_output=True)


def pip_source_build(folder: Path) -> None:
    """A venv, an sdist with a C extension, ``pip install`` of that sdist (built from source,
    with the venv's own setuptools; ``wheel`` comes from the configured package index)."""
    project = folder / "burstext-1.0"
    project.mkdir(parents=True, exist_ok=True)
    (project / "setup.py").write_text(_SETUP)
    (project / "burstext.c").write_text(_EXTENSION)
    (project / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: burstext\nVersion: 1.0\n")
    sdist = folder / "burstext-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(project, arcname=project.name)
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "wheel"], check=True, capture_output=True)
    subprocess.run(
        [*pip, "install", "--no-index", "--no-build-isolation", "--no-cache-dir", str(sdist)],
        check=True,
        capture_output=True,
    )
    check = [str(venv / "bin" / "python"), "-c", "import burstext; print(burstext.twice(21))"]
    subprocess.run(check, check=True, capture_output=True)


@contextlib.contextmanager
def _serving(folder: Path) -> Iterator[int]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def curl_bash_installer(folder: Path) -> None:
    site = folder / "site"
    site.mkdir(parents=True, exist_ok=True)
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as archive:
        data = _TOOL.encode()
        info = tarfile.TarInfo("tool/tool.sh")
        info.size, info.mode = len(data), 0o755
        archive.addfile(info, io.BytesIO(data))
    (site / "tool.tar.gz").write_bytes(payload.getvalue())
    with _serving(site) as port:
        script = _INSTALLER % {"prefix": folder / "opt", "port": port}
        (site / "install.sh").write_text(textwrap.dedent(script))
        subprocess.run(
            ["bash", "-c", f"curl -fsSL http://127.0.0.1:{port}/install.sh | bash"],
            check=True,
            capture_output=True,
        )


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="provarmor-burst-") as tmp:
        print(run_steps(Path(tmp), steps=tuple(sys.argv[1:]) or STEPS))
