import subprocess
from pathlib import Path

import pytest

from provarmor.lab.atomics.arguments import Workspace
from provarmor.lab.atomics.downloads import BASE_URL
from provarmor.lab.atomics.sandbox import BOOTSTRAP, Sandbox


def _workspace(root: Path) -> Workspace:
    space = Workspace(scratch=str(root / "T"), atomics=str(root / "T" / "atomics"))
    for path in (space.temporary, space.variable_temporary, space.home):
        Path(path).mkdir(parents=True)
    return space


def test_argv_enters_the_namespace_binds_then_runs_the_shell(tmp_path):
    sandbox = Sandbox(www=tmp_path / "www", log=tmp_path / "log")
    space = Workspace(scratch="/s/T", atomics="/s/T/atomics")
    argv = sandbox.argv(workspace=space, shell="/bin/bash", command="id")
    assert argv[:4] == ["ip", "netns", "exec", sandbox.namespace]
    assert sandbox.namespace.startswith("provarmor-lab-")
    assert argv[7:9] == ["-c", BOOTSTRAP]
    assert argv[9:16] == ["3", "/s/T/tmp", "/tmp", "/s/T/vartmp", "/var/tmp", "/s/T/home", "/root"]
    assert argv[16:] == ["/root", "/bin/bash", "bash", "-c", "id"]


@pytest.mark.privileged
def test_inside_there_is_only_loopback_a_private_tmp_and_the_local_server(
    sandbox_machine, tmp_path
):
    space = _workspace(tmp_path)
    (tmp_path / "www" / "T1" / "src").mkdir(parents=True)
    (tmp_path / "www" / "T1" / "src" / "payload.sh").write_text("echo served\n")
    command = (
        "ip -o link show | wc -l; touch /tmp/inside /root/home-file; pwd; "
        f"curl -s {BASE_URL}/T1/src/payload.sh; "
        "curl -s -m 2 http://192.0.2.1/ >/dev/null 2>&1 || echo unreachable"
    )
    with Sandbox(www=tmp_path / "www", log=tmp_path / "server.log") as sandbox:
        done = subprocess.run(
            sandbox.argv(workspace=space, shell="/bin/sh", command=command),
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        namespace = sandbox.namespace
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "/root", "echo", "served", "unreachable"]
    assert (Path(space.temporary) / "inside").exists() and not Path("/tmp/inside").exists()
    assert (Path(space.home) / "home-file").exists() and not Path("/root/home-file").exists()
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert namespace not in names


@pytest.mark.privileged
def test_a_failed_bind_stops_before_the_command_runs(sandbox_machine, tmp_path):
    space = Workspace(scratch=str(tmp_path / "absent"), atomics=str(tmp_path / "absent" / "a"))
    with Sandbox(www=tmp_path / "www", log=tmp_path / "server.log") as sandbox:
        done = subprocess.run(
            sandbox.argv(workspace=space, shell="/bin/sh", command="echo ran"),
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    assert done.returncode == 126 and "ran" not in done.stdout
    assert "provarmor sandbox: open" in done.stderr
