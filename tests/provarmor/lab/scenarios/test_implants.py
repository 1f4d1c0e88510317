import base64
import subprocess

from provarmor.lab.context import LabContext
from provarmor.lab.scenarios.implants import (
    drop_dir,
    encoded,
    fileless_start,
    implant_payload,
    scan_targets,
    ssh_public_key,
)


def test_encoded_commands_decode_back_and_run():
    command = encoded("echo hello-$((1+2))")
    assert (
        subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout == "hello-3\n"
    )


def test_implant_is_python_that_compiles_and_points_at_the_c2():
    ctx = LabContext.from_seed(3)
    payload = implant_payload(ctx, shebang=True)
    assert payload.content.startswith("#!/usr/bin/python3\n")
    compile(payload.content, "implant", "exec")
    assert f"{ctx.c2.url}{ctx.c2.beacon_path}/{ctx.c2.agent}" in payload.content
    assert ctx.payload_url(payload.path) in fileless_start(ctx.payload_url(payload.path))


def test_drop_dirs_are_hidden_in_world_writable_places_and_seeded():
    first, second = drop_dir(LabContext.from_seed(1)), drop_dir(LabContext.from_seed(2))
    assert first != second
    assert first.split("/")[-1].startswith(".")


def test_ssh_key_is_well_formed_and_scan_targets_are_lab_addresses():
    ctx = LabContext.from_seed(4)
    kind, blob, _comment = ssh_public_key(ctx).split()
    raw = base64.b64decode(blob)
    assert kind == "ssh-ed25519" and raw[4:15] == b"ssh-ed25519" and len(raw) == 51
    assert all(address.startswith("10.213.0.") for address in scan_targets(ctx))
