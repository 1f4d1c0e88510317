import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from provarmor.lab.jail import ProcessJail
from provarmor.lab.scheduler import CronScheduler, Job, ScheduledJobError

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="a cron daemon and mounts need root"),
]

_ANCESTRY = """p=$$
for i in 1 2 3; do
    p=$(awk '/^PPid:/ {print $2}' /proc/$p/status)
    printf '%s ' "$(cat /proc/$p/comm)"
done
echo
id -un
readlink /proc/self/ns/mnt
echo "$(ls -A /etc/cron.d | wc -l) $(wc -c </etc/crontab)"
"""


def _machine_tables() -> dict[str, bytes]:
    tables = [Path("/etc/crontab"), *Path("/etc/cron.d").iterdir()]
    return {str(path): path.read_bytes() for path in tables if path.is_file()}


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder the job's user can reach (pytest's own are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="pytest-cron-", dir="/var/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _scheduler(tmp_path: Path, scratch: Path) -> tuple[CronScheduler, ProcessJail, ProcessJail]:
    observed, machinery = ProcessJail("pytest-cron-o"), ProcessJail("pytest-cron-m", own=True)
    scheduler = CronScheduler(
        state=tmp_path / "state", scratch=scratch, observed=observed, machinery=machinery
    )
    return scheduler, observed, machinery


def _daemons(jail: ProcessJail) -> list[int]:
    """Cron daemons this test started (the job's cron children have the daemon as parent)."""
    return [pid for pid in jail.pids() if _comm(pid) == "cron" and _parent(pid) == os.getpid()]


def test_a_job_runs_under_a_real_cron_daemon_as_its_user_in_private_tables(tmp_path, scratch):
    """The job's process tree is the one a site's cron job has (the script's shell, the
    job's cron child, the cron daemon); it runs as the job's user; the daemon reads only
    the job's own tables, and the machine's stay as they were."""
    before = _machine_tables()
    user = pwd.getpwuid(65534).pw_name
    scheduler, observed, machinery = _scheduler(tmp_path, scratch)
    try:
        result = scheduler.run(Job(name="probe", script=_ANCESTRY, user=user), timeout=30)
        failing = scheduler.run(Job(name="fails", script="echo broken >&2; exit 3"), timeout=30)
        assert _daemons(observed) == [] and machinery.pids() == []
    finally:
        observed.kill_all()
        machinery.kill_all()
    assert result.returncode == 0, result.output
    chain, ran_as, namespace, tables = result.output.decode().splitlines()
    assert chain.split()[:3] == ["sh", "cron", "cron"]
    assert ran_as == user
    assert namespace != os.readlink("/proc/self/ns/mnt")
    assert tables == "1 0"  # the job's own cron.d file; an empty /etc/crontab
    assert (failing.returncode, failing.output) == (3, b"broken\n")
    assert _machine_tables() == before


def test_a_job_that_does_not_end_in_time_is_an_error_and_its_daemon_is_stopped(tmp_path, scratch):
    scheduler, observed, machinery = _scheduler(tmp_path, scratch)
    try:
        with pytest.raises(ScheduledJobError, match="did not end within 1 s"):
            scheduler.run(Job(name="slow", script="sleep 30"), timeout=1)
        assert _daemons(observed) == [] and machinery.pids() == []
    finally:
        observed.kill_all()
        machinery.kill_all()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0
