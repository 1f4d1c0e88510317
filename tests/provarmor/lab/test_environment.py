import os
import pwd
import re
import subprocess
from pathlib import Path

import pytest

from provarmor.lab.context import PYTHON, LabContext
from provarmor.lab.environment import LabEnvironment, remove_artifacts
from provarmor.sources.owngroup import in_own_group


def test_artifacts_are_removed_but_short_and_relative_paths_are_refused(tmp_path):
    folder = tmp_path / "drop" / "inner"
    folder.mkdir(parents=True)
    (folder / "f").write_text("x")
    single = tmp_path / "single"
    single.write_text("x")
    removed = remove_artifacts([str(tmp_path / "drop"), str(single), "/tmp", "relative/x", "/"])
    assert removed == [str(tmp_path / "drop"), str(single)]
    assert not (tmp_path / "drop").exists() and not single.exists()


@pytest.mark.privileged
@pytest.mark.slow
def test_the_lab_machinery_is_provarmors_own_and_the_victim_stays_observed(lab_machine):
    """The servers (the attacker's side, the lab's plumbing) and ``remote`` commands run below
    ProvArmor's own group, which the sensors mark; the web application, the other hosts'
    sshds and victim commands do not, and the web application runs on the system's
    interpreter, as installed software does (not on this checkout's environment). This
    host's own login sshd is observed too. The web application, the login sshd and victim
    commands run in the victim's network namespace, not this machine's."""
    with LabEnvironment(LabContext.from_seed(7)) as env:
        own = {
            role: in_own_group(Path(f"/proc/{server.pid}/cgroup").read_text())
            for role, server in env.servers.items()
        }
        web_group = Path(f"/proc/{env.web_pid}/cgroup").read_text()
        web_program = Path(f"/proc/{env.web_pid}/cmdline").read_bytes().split(b"\0")[0]
        remote = env.run("cat /proc/self/cgroup", remote="c2", check=True).output.decode()
        victim = env.run("cat /proc/self/cgroup", check=True).output.decode()
        victim_net = os.stat(f"/run/netns/{env.ctx.network.victim.namespace}").st_ino
        nets = {
            "web": os.stat(f"/proc/{env.web_pid}/ns/net").st_ino,
            "login": os.stat(f"/proc/{env.servers['login'].pid}/ns/net").st_ino,
            "command": int(env.run("stat -Lc %i /proc/self/ns/net").output),
        }
    expected = {"c2": True, "sink": True, "dns": True, "mirror": True}
    assert own == {**expected, "host2": False, "admin": False, "login": False}
    assert not in_own_group(web_group) and web_program == PYTHON.encode()
    assert in_own_group(remote) and not in_own_group(victim)
    assert nets == dict.fromkeys(nets, victim_net), "the victim lives in its own namespace"
    assert os.stat("/proc/self/ns/net").st_ino != victim_net


@pytest.mark.privileged
@pytest.mark.slow
def test_an_account_another_process_adds_during_a_run_survives_the_restore(lab_machine):
    ctx = LabContext.from_seed(8)
    lab_users = (ctx.web.user, ctx.ops_user, ctx.dev_user)
    try:
        with LabEnvironment(ctx):
            assert all(_exists(user) for user in lab_users)
            subprocess.run(["useradd", "-M", "pvconcurrent1"], check=True)  # not the lab's
        assert _exists("pvconcurrent1")
        assert not any(_exists(user) for user in lab_users)
    finally:
        subprocess.run(["userdel", "-f", "pvconcurrent1"], check=False, capture_output=True)


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


_UP = """p=$$; up=""
for i in 1 2 3; do
    p=$(awk '/^PPid:/ {print $2}' /proc/$p/status); up="$up $(cat /proc/$p/comm)"
done
echo "UP=$up USER=$(id -un) TTY=$(readlink /proc/$$/fd/1)"
"""


def _fields(output: str) -> dict[str, str]:
    """The probe's answer (after the shell's prompts; the echo of the typed probe itself
    reads ``UP=$up``)."""
    found = re.search(r"UP=((?: \S+)+) USER=(\S+) TTY=(\S+)", output)
    assert found, output
    return {"up": found[1].strip(), "user": found[2], "tty": found[3]}


@pytest.mark.privileged
@pytest.mark.slow
def test_people_type_at_a_terminal_of_an_ssh_login_and_jobs_run_under_cron(lab_machine):
    """The workloads' two ways in: an ssh login from the workstation (the admin host) to
    this host's sshd, with a pseudo-terminal, as the lab user; a job of a cron daemon."""
    with LabEnvironment(LabContext.from_seed(9)) as env:
        dev = env.ctx.dev_user
        session = _fields(env.type_command(dev, _UP, check=True).output.decode())
        env.scheduled("probe", _UP, user=dev)
        job = _fields(Path(env.ctx.scratch, "cron", "probe-1.out").read_text())
    assert session["user"] == dev and session["tty"].startswith("/dev/pts/"), session
    assert session["up"].split() in (["sshd"] * 3, ["sshd-session", "sshd", "sshd"]), session
    assert job["user"] == dev and job["up"].split() == ["sh", "cron", "cron"], job
    assert not job["tty"].startswith("/dev/pts/")
