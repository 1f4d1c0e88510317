from provarmor.lab.atomics.areas import Areas, PathHazard, judge_path, resolve

AREAS = Areas().with_scratch("/var/lib/provarmor/lab/atomics/r/T")


def _judge(path, *, deleting=False, cwd="/root", unset=frozenset()):
    verdict = judge_path(path, areas=AREAS, cwd=cwd, deleting=deleting, unset=unset)
    return None if verdict is None else verdict[0]


def test_scratch_and_private_places_may_be_written_and_emptied():
    for path in ("/tmp/x", "/var/tmp/.h/f", "~/.bashrc", "$HOME/x", "rel/file", "/dev/null"):
        assert _judge(path) is None, path
    assert _judge("/var/lib/provarmor/lab/atomics/r/T/tmp/a") is None
    assert _judge("/tmp/*", deleting=True) is None


def test_the_private_roots_themselves_may_not_be_deleted():
    assert _judge("/tmp", deleting=True) is PathHazard.DELETE
    assert _judge("/root", deleting=True) is PathHazard.DELETE


def test_files_the_snapshot_restores_may_change():
    assert _judge("/etc/cron.d/persistevil") is None
    assert _judge("/etc/cron.d/persistevil", deleting=True) is None
    assert _judge("/etc/profile") is None
    assert _judge("/etc/cron.d", deleting=True) is PathHazard.DELETE


def test_everything_else_is_refused_with_its_kind():
    assert _judge("/", deleting=True) is PathHazard.DELETE
    assert _judge("/etc/pam.d/su-l") is PathHazard.WRITE
    assert _judge("/etc/cron.weekly/x") is PathHazard.WRITE
    assert _judge("/etc/shadow") is PathHazard.ACCOUNTS
    assert _judge("/etc/ld.so.preload") is PathHazard.PRELOAD
    assert _judge("/etc/ssh/sshd_config") is PathHazard.SSHD
    assert _judge("/var/log/syslog") is PathHazard.LOGGING
    assert _judge("/etc/audit/auditd.conf") is PathHazard.LOGGING
    assert _judge("/dev/sda") is PathHazard.DEVICE
    assert _judge("/proc/sys/vm/drop_caches") is PathHazard.KERNEL
    assert _judge("/proc/sysrq-trigger") is PathHazard.POWER


def test_dot_dot_and_relative_paths_are_resolved_before_judging():
    assert _judge("/tmp/../etc/x") is PathHazard.WRITE
    assert _judge("../etc/x", cwd="/root") is PathHazard.WRITE
    assert _judge("x", cwd="/etc") is PathHazard.WRITE


def test_paths_known_only_at_run_time():
    assert _judge("$DIR/x") is None
    assert _judge("$DIR/x", deleting=True) is PathHazard.DELETE
    assert _judge("$TMPFILE", deleting=True, unset=frozenset({"TMPFILE"})) is None
    assert _judge("$DIR/", deleting=True, unset=frozenset({"DIR"})) is PathHazard.DELETE
    assert resolve("x", cwd=None) is None
