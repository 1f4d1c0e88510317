"""Before recording starts: a scenario's vulnerable preconditions and its served payloads.

Preconditions (a careless sudoers rule, a setuid copy of a tool, a tampered dependency) are
the state the attacker finds, not the attack, so they are made before the recorder starts.
Payload C sources are compiled here too, into the C2 server's document root, and zip
payloads are packed, so the attack itself only downloads and runs them.
"""

from __future__ import annotations

import io
import os
import pwd
import subprocess
import tempfile
import zipfile
from pathlib import Path

from provarmor.lab.context import LabContext
from provarmor.lab.scenario import Payload, Plan, SetupFile


def _make_parents(path: Path, *, uid: int, gid: int) -> None:
    """Create the missing parents of ``path``, owned by ``uid``/``gid``."""
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        folder.mkdir()
        os.chown(folder, uid, gid)


def write_setup_file(item: SetupFile) -> None:
    """Write ``item`` (and any missing parent directories) owned by its owner."""
    path = Path(item.path)
    entry = pwd.getpwnam(item.owner)
    _make_parents(path, uid=entry.pw_uid, gid=entry.pw_gid)
    path.write_text(item.content)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(item.mode)


def compile_c(source: str, output: Path, *, shared: bool = False) -> None:
    """gcc ``source`` into ``output`` (a shared library when ``shared``)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        source_path = Path(folder) / "main.c"
        source_path.write_text(source)
        flags = ["-shared", "-fPIC"] if shared else []
        subprocess.run(
            ["gcc", "-O1", "-s", *flags, "-o", str(output), str(source_path)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    output.chmod(0o755)


def publish(ctx: LabContext, payload: Payload) -> Path:
    """Put ``payload`` in the C2 server's document root; returns where it went."""
    target = ctx.run_dir / "c2" / "www" / payload.path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if payload.compile:
        compile_c(payload.content, target, shared=payload.path.endswith(".so"))
    elif payload.archive_as:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(payload.archive_as, payload.content)
        target.write_bytes(buffer.getvalue())
    else:
        target.write_text(payload.content)
    return target


def prepare(ctx: LabContext, plan: Plan) -> None:
    """Write the setup files, run the setup commands, publish the payloads."""
    for item in plan.setup_files:
        write_setup_file(item)
    for command in plan.setup_commands:
        subprocess.run(list(command), check=True, capture_output=True, timeout=60)
    for payload in plan.payloads:
        publish(ctx, payload)
