"""A parsed log line as a canonical event."""

from provarmor.model.actions import Action
from provarmor.model.event import Host, LogRef
from provarmor.sources.hostlog.events import build_event
from provarmor.sources.hostlog.lines import LogLine

HOST = Host(id="vm1")
ACCEPTED = LogLine(
    timestamp=1796580236990863000,
    hostname="vm",
    program="sshd",
    pid=20456,
    message="Accepted password for hlvictim from 10.99.15.1 port 45002 ssh2",
    boot_id="2e097ec1",
)


def _event(line: LogLine = ACCEPTED, occurrence: int = 0):
    return build_event(
        line,
        host=HOST,
        log=LogRef(file="auth.log", line=91),
        dataset="syslog",
        occurrence=occurrence,
    )


def test_login_event_carries_ecs_fields():
    event = _event()
    assert (event.event.action, event.event.outcome) == (Action.AUTHENTICATE, "success")
    assert event.user is not None and event.user.name == "hlvictim"
    assert event.source is not None and (event.source.ip, event.source.port) == (
        "10.99.15.1",
        45002,
    )
    assert event.authentication is not None and event.authentication.method == "password"
    assert (event.process.name, event.process.pid) == ("sshd", 20456)
    assert (event.host.id, event.host.name, event.host.boot_id) == ("vm1", "vm", "2e097ec1")
    assert event.message == ACCEPTED.message
    assert event.event.dataset == "syslog"


def test_the_same_line_gets_the_same_id_and_a_repeat_at_the_same_time_another():
    assert _event().event.id == _event().event.id
    assert _event(occurrence=1).event.id != _event().event.id


def test_sudo_command_is_the_target_process():
    line = LogLine(
        timestamp=1,
        hostname="vm",
        program="sudo",
        pid=7,
        message="hladmin : PWD=/tmp ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow",
    )
    event = _event(line)
    assert event.user is not None and event.user.target is not None
    assert event.user.target.name == "root"
    assert event.target is not None and event.target.process is not None
    assert event.target.process.executable == "/usr/bin/cat"
    assert event.target.process.command_line == "/usr/bin/cat /etc/shadow"


def test_a_plain_line_has_only_its_text():
    line = LogLine(timestamp=1, hostname="", program="kernel", pid=0, message="hello")
    event = _event(line)
    assert event.event.action is Action.LOG
    assert (event.user, event.source, event.target, event.authentication) == (None,) * 4
    assert event.message == "hello"
