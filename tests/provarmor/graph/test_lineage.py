"""The lineage classifier on small hand-made streams: precedence, inheritance, bounds.

The recorded real acts (apt, sudo, venv, a web shell, a downloaded binary, ProvArmor's own
cgroup) are judged end to end in tests/provarmor/detection/test_context.py."""

from __future__ import annotations

import msgspec

from provarmor.graph.lineage import (
    ContextKind,
    Effect,
    LineageClassifier,
    LineageLimits,
)
from provarmor.model.actions import Action
from provarmor.model.event import Endpoint, Event, User
from provarmor.testing.factories import entity, make_event


def _fork(child: int, parent: int, exe: str = "/usr/bin/bash", ts: int = 1) -> Event:
    return make_event(Action.FORK, pid=child, ppid=parent, exe=exe, ts=ts)


def _exec(pid: int, exe: str, *args: str, ts: int = 2, real_uid: str = "0") -> Event:
    event = make_event(Action.EXEC, pid=pid, exe=exe, args=(exe, *args), path=exe, ts=ts)
    process = msgspec.structs.replace(event.process, real_user=User(id=real_uid))
    return msgspec.structs.replace(event, process=process)


def _run(*events: Event) -> LineageClassifier:
    classifier = LineageClassifier()
    for event in events:
        classifier.observe(event)
    return classifier


def test_package_transaction_flows_to_maintainer_scripts() -> None:
    classifier = _run(
        _exec(10, "/usr/bin/apt-get", "install", "-y", "redis-server"),
        _fork(11, 10),
        _exec(11, "/usr/bin/dpkg", "--configure"),
        _fork(12, 11),
        _exec(12, "/var/lib/dpkg/info/redis-server.postinst", "configure"),
        _fork(13, 12),
        _exec(13, "/usr/sbin/useradd", "redis"),
    )
    lineage = classifier.lineage_of(entity(13))
    assert lineage.kind is ContextKind.PACKAGE
    assert lineage.effect is Effect.LOWER
    assert lineage.explain() == (
        "package transaction: apt-get -> dpkg -> redis-server.postinst -> useradd "
        "(apt-get started a package transaction)"
    )


def test_server_child_beats_a_package_manager_below_it() -> None:
    classifier = _run(
        _exec(20, "/usr/bin/python3", "web.py"),
        make_event(Action.ACCEPT, pid=20, ip="127.0.0.1", port=40000, ts=3),
        _fork(21, 20, ts=4),
        _exec(21, "/bin/sh", "-c", "apt-get install x", ts=5),
        _fork(22, 21, ts=6),
        _exec(22, "/usr/bin/apt-get", "install", "x", ts=7),
    )
    lineage = classifier.lineage_of(entity(22))
    assert lineage.kind is ContextKind.SERVER_CHILD
    assert "accepted a connection from 127.0.0.1:40000" in lineage.explain()


def test_sudo_by_a_real_user_is_administration_but_not_by_root() -> None:
    classifier = _run(
        _exec(30, "/usr/bin/sudo", "tar", "czf", "b.tgz", "/etc/ssh", real_uid="1001"),
        _exec(31, "/usr/bin/sudo", "tar", "czf", "b.tgz", "/etc/ssh", real_uid="0"),
    )
    assert classifier.lineage_of(entity(30)).kind is ContextKind.ADMIN
    assert classifier.lineage_of(entity(31)).kind is ContextKind.NONE


def test_exec_of_a_file_a_network_client_wrote_is_downloaded() -> None:
    classifier = _run(
        _exec(40, "/usr/bin/curl", "-o", "/tmp/x/tool"),
        make_event(Action.CONNECT, pid=40, ip="127.0.0.1", port=8000, ts=3),
        make_event(Action.CREATE, pid=40, path="/tmp/x/tool", ts=4),
        _exec(41, "/tmp/x/tool", "/etc/shadow", ts=5),
    )
    lineage = classifier.lineage_of(entity(41))
    assert lineage.kind is ContextKind.DOWNLOADED
    assert "written by curl after it received data from 127.0.0.1:8000" in lineage.reason


def test_files_a_package_manager_fetched_are_installed_not_downloaded() -> None:
    classifier = _run(
        _exec(50, "/tmp/v/bin/pip", "install", "ujson"),
        make_event(Action.CONNECT, pid=50, ip="127.0.0.1", port=443, ts=3),
        make_event(Action.CREATE, pid=50, path="/tmp/v/lib/ujson.so", ts=4),
        _exec(51, "/usr/bin/python3", "-c", "import ujson", ts=5),
        make_event(Action.MMAP_EXEC, pid=51, path="/tmp/v/lib/ujson.so", ts=6),
    )
    lineage = classifier.lineage_of(entity(51))
    assert lineage.kind is ContextKind.BUILD
    assert "written by pip" in lineage.reason


def _own(event: Event) -> Event:
    return msgspec.structs.replace(
        event, process=msgspec.structs.replace(event.process, provarmor=True)
    )


def test_own_mark_is_absolute_and_counted() -> None:
    classifier = _run(
        _own(_exec(60, "/usr/sbin/ip", "netns", "add", "provarmor-lab-x")),
        _own(_fork(61, 60)),
        _own(_exec(61, "/usr/bin/curl", ts=3)),
    )
    assert classifier.lineage_of(entity(61)).kind is ContextKind.OWN
    assert classifier.stats.own_marked == 2


def test_a_child_that_left_the_group_before_its_exec_is_ordinary() -> None:
    """A lab jail moves its victims out of ProvArmor's group: their exec is not marked."""
    classifier = _run(
        _own(_fork(62, 60)),
        _exec(62, "/usr/bin/python3", "-m", "provarmor.lab.webapp", ts=3),
    )
    lineage = classifier.lineage_of(entity(62))
    assert lineage.kind is ContextKind.NONE
    assert "left ProvArmor's cgroup" in lineage.reason


def test_children_of_a_listening_server_are_server_children_even_without_accepts() -> None:
    listen = make_event(Action.LISTEN, pid=70, exe="/usr/bin/python3", ts=2)
    listen = msgspec.structs.replace(listen, source=Endpoint(ip="127.0.0.1", port=8388))
    classifier = _run(_exec(70, "/usr/bin/python3", "app.py"), listen, _fork(71, 70, ts=3))
    lineage = classifier.lineage_of(entity(71))
    assert lineage.kind is ContextKind.SERVER_CHILD
    assert lineage.reason == "python3 app.py listens on 127.0.0.1:8388"


def test_a_service_that_took_connections_serves_but_a_listener_an_attack_started_does_not() -> None:
    """The web server accepted (and then received data: raised itself) and stays a service;
    the bind shell its web shell started listens from a raised context; an implant that
    only connects out never serves."""
    classifier = _run(
        _exec(80, "/usr/bin/python3", "web.py"),
        make_event(Action.ACCEPT, pid=80, ip="192.0.2.7", port=40000, ts=3),
        make_event(Action.RECV, pid=80, ip="192.0.2.7", port=40000, ts=4),
        _fork(81, 80, ts=5),
        _exec(81, "/usr/bin/nc", "-l", "-p", "4444", ts=6),
        _listen(81, "0.0.0.0", 4444, ts=7),
        _fork(82, 80, ts=8),
        _exec(82, "/usr/bin/python3", "-", ts=9),
        make_event(Action.CONNECT, pid=82, ip="192.0.2.7", port=8443, ts=10),
    )
    assert classifier.lineage_of(entity(80)).effect is Effect.RAISE
    assert classifier.serves(entity(80))
    assert not classifier.serves(entity(81))
    assert not classifier.serves(entity(82))
    assert not classifier.serves(entity(999))  # never seen


def test_memory_is_bounded_and_evictions_counted() -> None:
    classifier = LineageClassifier(LineageLimits(max_processes=3, max_files=2, max_ends=1))
    for pid in range(5):
        classifier.observe(_exec(100 + pid, "/usr/bin/true"))
    for number in range(4):
        classifier.observe(make_event(Action.CREATE, pid=100 + 4, path=f"/tmp/f{number}"))
    assert classifier.stats.processes_evicted == 2
    assert classifier.stats.files_evicted == 2
    assert classifier.lineage_of(entity(100)).kind is ContextKind.NONE
    assert classifier.origin_of("/tmp/f0") is None
    assert classifier.origin_of("/tmp/f3") is not None


def test_debians_package_configuration_tools_are_package_transactions() -> None:
    classifier = _run(_exec(80, "/usr/bin/debconf-set-selections", ts=2))
    assert classifier.lineage_of(entity(80)).kind is ContextKind.PACKAGE


def test_the_account_tools_start_an_account_change_that_their_children_inherit() -> None:
    """A script with no terminal (cron, configuration management over ssh, an admin's
    script) removing a user: ``userdel -r`` deletes the home's shell history itself."""
    classifier = _run(
        _exec(140, "/bin/bash", "deploy.sh"),
        _fork(141, 140, ts=3),
        _exec(141, "/usr/sbin/userdel", "-r", "olduser", ts=4),
        _fork(142, 141, exe="/usr/sbin/userdel", ts=5),
        _fork(143, 140, ts=6),
        _exec(143, "/usr/bin/perl", "/usr/sbin/adduser", "--system", "svc", ts=7),
    )
    assert classifier.lineage_of(entity(140)).kind is ContextKind.NONE
    lineage = classifier.lineage_of(entity(142))
    assert (lineage.kind, lineage.effect) == (ContextKind.ACCOUNT, Effect.LOWER)
    assert lineage.explain() == "account change: userdel (userdel changes the account database)"
    assert classifier.lineage_of(entity(143)).reason == "adduser changes the account database"


def test_the_account_tools_lower_nothing_under_a_raising_context_or_a_terminal_of_its_own() -> None:
    """A web server's shell keeps its context; a shell that gave itself a terminal with no
    login program above it (a web shell's or an implant's upgrade) is not automation."""
    classifier = _run(
        _exec(150, "/usr/bin/python3", "web.py"),
        make_event(Action.ACCEPT, pid=150, ip="192.0.2.7", port=50010, ts=3),
        _fork(151, 150, ts=4),
        _exec(151, "/usr/sbin/useradd", "-m", "backdoor", ts=5),
        _exec(160, "/bin/bash", "implant.sh", ts=6),
        _fork(161, 160, ts=7),
        _on(_exec(161, "/usr/sbin/usermod", "-aG", "sudo", "x", ts=8), "pts3"),
    )
    assert classifier.lineage_of(entity(151)).kind is ContextKind.SERVER_CHILD
    assert classifier.lineage_of(entity(161)).kind is ContextKind.NONE


def _on(event: Event, tty: str) -> Event:
    return msgspec.structs.replace(event, process=msgspec.structs.replace(event.process, tty=tty))


def _session(server: int, *, port: int) -> list[Event]:
    """``server`` accepts a connection and forks the program (pid server + 1) that runs the
    session's shell (pid server + 2) on pts0 (sshd's case, or a web server's)."""
    return [
        make_event(Action.ACCEPT, pid=server, ip="192.0.2.7", port=port, ts=3),
        _fork(server + 1, server, exe="", ts=4),
        _fork(server + 2, server + 1, exe="", ts=5),
        _on(_exec(server + 2, "/bin/bash", ts=6), "pts0"),
        _fork(server + 3, server + 2, ts=7),
        _on(_exec(server + 3, "/usr/bin/tar", "czf", "b.tgz", "/etc/ssh", ts=8), "pts0"),
    ]


def test_a_root_shell_on_an_ssh_terminal_is_administration() -> None:
    classifier = _run(_exec(70, "/usr/sbin/sshd", "-D"), *_session(70, port=50000))
    lineage = classifier.lineage_of(entity(73))
    assert lineage.kind is ContextKind.ADMIN
    assert lineage.reason == "terminal pts0 of a sshd session"
    assert lineage.chain == ("bash", "tar")


def test_what_sshd_receives_before_it_forks_the_shell_does_not_decide_the_session() -> None:
    """sshd's session process reads the client's protocol bytes before it forks the user's
    shell; the sensor reports them up to a flush period later, so they may come first in the
    stream (real corpus chunk-11: every terminal session became ``remote-input`` and every
    package transaction typed there a download). The session rules decide: admin."""
    classifier = _run(
        _exec(70, "/usr/sbin/sshd", "-D"),
        make_event(Action.ACCEPT, pid=70, ip="192.0.2.7", port=50000, ts=3),
        _fork(71, 70, exe="/usr/sbin/sshd", ts=4),
        make_event(Action.RECV, pid=71, ip="192.0.2.7", port=50000, ts=4),
        _fork(72, 71, exe="/usr/sbin/sshd", ts=5),
        _on(_exec(72, "/bin/bash", ts=6), "pts0"),
        _fork(73, 72, ts=7),
        _on(_exec(73, "/usr/bin/apt-get", "install", "-y", "nginx", ts=8), "pts0"),
    )
    assert classifier.lineage_of(entity(73)).kind is ContextKind.PACKAGE
    lineage = classifier.lineage_of(entity(72))
    assert (lineage.kind, lineage.reason) == (ContextKind.ADMIN, "terminal pts0 of a sshd session")
    server = _run(
        _exec(60, "/usr/bin/python3", "app.py"),
        make_event(Action.ACCEPT, pid=60, ip="192.0.2.7", port=50003, ts=3),
        make_event(Action.RECV, pid=60, ip="192.0.2.7", port=50003, ts=4),
    )
    assert server.lineage_of(entity(60)).kind is ContextKind.REMOTE_INPUT


def test_a_session_without_a_terminal_or_a_terminal_outside_a_session_is_not() -> None:
    """``ssh host cmd`` (no terminal) stays neutral (its tar is a backup of its own, not
    administration); so does a pty a service allocated for itself (python's ``pty.spawn``
    under a daemon started by init)."""
    untyped = [_exec(80, "/usr/sbin/sshd", "-D"), *_session(80, port=50001)]
    classifier = _run(*(_on(event, "") for event in untyped))
    assert classifier.lineage_of(entity(82)).kind is ContextKind.NONE
    assert classifier.lineage_of(entity(83)).kind is ContextKind.BACKUP
    classifier = _run(
        make_event(Action.FORK, pid=90, ppid=1, exe="/usr/lib/systemd/systemd", ts=1),
        _exec(90, "/usr/bin/python3", "/opt/agent.py", ts=2),
        _fork(91, 90, exe="/usr/bin/python3", ts=3),
        _exec(91, "/usr/bin/python3", "-c", "import pty; pty.spawn('/bin/bash')", ts=4),
        _fork(92, 91, exe="/usr/bin/python3", ts=5),
        _on(_exec(92, "/bin/bash", ts=6), "pts4"),
        _fork(93, 92, ts=7),
        _on(_exec(93, "/usr/sbin/usermod", "-aG", "adm", "x", ts=8), "pts4"),
    )
    assert classifier.lineage_of(entity(93)).kind is ContextKind.SERVICE


def test_a_web_shell_that_spawns_a_terminal_or_a_login_stays_a_server_child() -> None:
    """``script`` (a pty) and even ``login``/``su`` under a web server's shell: the raising
    context wins and no session begins below it."""
    classifier = _run(
        _exec(100, "/usr/bin/python3", "web.py"),
        *_session(100, port=50002),
        _fork(104, 103, ts=9),
        _on(_exec(104, "/bin/login", "-f", "root", ts=10), "pts0"),
        _fork(105, 104, ts=11),
        _on(_exec(105, "/bin/bash", ts=12), "pts0"),
    )
    for pid in (103, 105):
        lineage = classifier.lineage_of(entity(pid))
        assert lineage.kind is ContextKind.SERVER_CHILD
        assert "web.py accepted a connection from 192.0.2.7" in lineage.reason


def _listen(pid: int, ip: str, port: int, ts: int) -> Event:
    event = make_event(Action.LISTEN, pid=pid, ts=ts)
    return msgspec.structs.replace(event, source=Endpoint(ip=ip, port=port))


def _connect(pid: int, port: int, *, own_port: int, ts: int) -> Event:
    event = make_event(Action.CONNECT, pid=pid, ip="127.0.0.1", port=port, ts=ts)
    return msgspec.structs.replace(event, source=Endpoint(ip="127.0.0.1", port=own_port))


def _talks_to_a_local_server(shell: list[Event], *, listen_ip: str = "127.0.0.1") -> list[Event]:
    """The shell (pid 113) starts a cache server (pid 114) and talks to it on 127.0.0.1."""
    return [
        *shell,
        _fork(114, 113, ts=9),
        _exec(114, "/usr/bin/memcached", "-l", listen_ip, ts=10),
        _listen(114, listen_ip, 11211, ts=11),
        _connect(113, 11211, own_port=40100, ts=12),
        make_event(Action.ACCEPT, pid=114, ip="127.0.0.1", port=40100, ts=13),
        make_event(Action.RECV, pid=114, ip="127.0.0.1", port=40100, ts=14),
        make_event(Action.RECV, pid=113, ip="127.0.0.1", port=11211, ts=15),
    ]


def test_a_local_server_an_admin_session_started_is_its_own_data_not_remote_input() -> None:
    """Found on the corpus (chunk-15): a root session that used a memcached it had started
    stayed 'remote input' for the rest of its life, and raised its package purge's shadow
    reads. Recorded excerpt: tests/provarmor/detection/test_context.py."""
    for listen_ip in ("127.0.0.1", "0.0.0.0"):
        session = [_exec(110, "/usr/sbin/sshd", "-D"), *_session(110, port=50003)]
        classifier = _run(*_talks_to_a_local_server(session, listen_ip=listen_ip))
        for pid in (112, 114):  # the session's shell and the server it started
            lineage = classifier.lineage_of(entity(pid))
            assert lineage.kind is ContextKind.ADMIN, (listen_ip, pid, lineage)
        classifier.observe(_exec(113, "/tmp/written-later", ts=16))
        classifier.observe(make_event(Action.CREATE, pid=113, path="/tmp/out", ts=17))
        origin = classifier.origin_of("/tmp/out")
        assert origin is not None and not origin.tainted()


def test_a_local_server_of_unknown_or_raising_context_is_still_remote_input() -> None:
    """Without a lowering context (a plain root shell: the attack recordings' loopback
    download), and once the server took input from elsewhere, a local peer vouches for
    nothing."""
    neutral = [_exec(112, "/bin/bash", ts=6), _fork(113, 112, ts=7), _exec(113, "/bin/bash")]
    classifier = _run(*_talks_to_a_local_server(neutral))
    assert classifier.lineage_of(entity(113)).kind is ContextKind.REMOTE_INPUT
    session = [_exec(110, "/usr/sbin/sshd", "-D"), *_session(110, port=50004)]
    tainted = _talks_to_a_local_server(session)
    outside = make_event(Action.RECV, pid=114, ip="192.0.2.9", port=443, ts=13)
    classifier = _run(*tainted[:-3], outside, *tainted[-3:])
    assert classifier.lineage_of(entity(114)).kind is ContextKind.REMOTE_INPUT
    lineage = classifier.lineage_of(entity(113))
    assert lineage.kind is ContextKind.REMOTE_INPUT
    assert lineage.reason == "received data from 127.0.0.1:11211"


def test_local_ends_are_bounded_and_evictions_counted() -> None:
    classifier = LineageClassifier(LineageLimits(max_ends=1))
    classifier.observe(_listen(130, "127.0.0.1", 8001, ts=1))
    classifier.observe(_listen(130, "127.0.0.1", 8002, ts=2))
    assert classifier.stats.local_ends_evicted == 1


def _running(
    pid: int,
    ppid: int,
    exe: str,
    *args: str,
    tty: str = "",
    listens: str = "",
    accepted: str = "",
) -> Event:
    """A ``running`` event: ``pid`` was already running when the sensor started (``listens``
    and ``accepted``: ``ip:port`` of a socket it listened on and of a peer it had accepted)."""
    event = make_event(Action.RUNNING, pid=pid, ppid=ppid or None, exe=exe, args=(exe, *args))
    source = destination = None
    if listens:
        ip, port = listens.rsplit(":", 1)
        source = Endpoint(ip=ip, port=int(port))
    if accepted:
        ip, port = accepted.rsplit(":", 1)
        destination = Endpoint(ip=ip, port=int(port))
    process = msgspec.structs.replace(event.process, tty=tty)
    return msgspec.structs.replace(event, process=process, source=source, destination=destination)


INIT_LISTENING = _running(1, 0, "/process_api", "--addr", "0.0.0.0:2024", listens="0.0.0.0:2024")
"""An init that listens (socket activation; in some sandboxes, its control API)."""


def test_a_terminal_of_an_ssh_session_opened_before_the_agent_is_administration() -> None:
    """init -> sshd (listens) -> sshd (the connection it accepted) -> bash on pts0, all
    already running; the tar the shell starts afterwards is interactive administration."""
    classifier = _run(
        INIT_LISTENING,
        _running(500, 1, "/usr/sbin/sshd", "-D", listens="127.0.0.1:2222"),
        _running(501, 500, "/usr/sbin/sshd", "sshd: root@pts/0", accepted="127.0.0.1:40410"),
        _running(502, 501, "/usr/bin/bash", "-bash", tty="pts0"),
        _fork(503, 502, ts=7),
        _on(_exec(503, "/usr/bin/tar", "czf", "b.tgz", "/etc/ssh", ts=8), "pts0"),
    )
    shell, tar = classifier.lineage_of(entity(502)), classifier.lineage_of(entity(503))
    assert (shell.kind, tar.kind) == (ContextKind.ADMIN, ContextKind.ADMIN)
    assert tar.reason == "terminal pts0 of a sshd session"
    assert tar.chain == ("bash", "tar")
    assert classifier.lineage_of(entity(500)).kind is ContextKind.SERVICE


def test_init_that_listens_starts_services_not_server_children() -> None:
    classifier = _run(
        INIT_LISTENING,
        _running(600, 1, "/usr/sbin/cron", "-f"),
        _running(601, 1, "/usr/bin/bash", "/opt/job.sh"),
        _running(602, 601, "/usr/bin/sleep", "60"),
        _fork(603, 1, exe="/process_api", ts=5),
    )
    for pid in (600, 601, 602, 603):
        assert classifier.lineage_of(entity(pid)).kind is ContextKind.SERVICE, pid
    assert not classifier.serves(entity(1))


def test_jobs_of_a_cron_that_was_already_running_are_scheduled() -> None:
    classifier = _run(
        INIT_LISTENING,
        _running(610, 1, "/usr/sbin/cron", "-f"),
        _running(611, 610, "/usr/sbin/cron", "-f"),  # a job's cron child, already running
        _running(612, 611, "/bin/sh", "-c", "/usr/local/bin/backup"),
        _fork(613, 610, exe="/usr/sbin/cron", ts=5),
        _exec(613, "/bin/sh", "-c", "tar czf /var/backups/etc.tgz /etc", ts=6),
    )
    for pid in (611, 612, 613):
        lineage = classifier.lineage_of(entity(pid))
        assert lineage.kind is ContextKind.SCHEDULED, pid
        assert lineage.reason == "started by cron"


def test_children_of_a_server_that_was_already_running_are_server_children() -> None:
    """A web server started before the agent: the shell it had already started and the
    one it starts afterwards are both its children (whether they followed an accept cannot
    be known; a listening parent is enough, as it is live). A worker that holds an accepted
    connection makes its children server children too."""
    classifier = _run(
        INIT_LISTENING,
        _running(700, 1, "/usr/bin/bash", "-c", "python3 web.py"),
        _running(701, 700, "/usr/bin/python3", "web.py", listens="0.0.0.0:8080"),
        _running(702, 701, "/bin/sh", "-c", "cat /etc/shadow; sleep 100"),
        _running(703, 1, "/usr/sbin/apache2", accepted="192.0.2.7:40000"),
        _running(704, 703, "/bin/sh", "-c", "id"),
        _fork(705, 701, exe="/usr/bin/python3", ts=5),
        _exec(705, "/bin/sh", "-c", "cat /etc/shadow", ts=6),
    )
    assert classifier.lineage_of(entity(701)).kind is ContextKind.SERVICE
    assert classifier.serves(entity(701))
    for pid in (702, 705):
        lineage = classifier.lineage_of(entity(pid))
        assert lineage.kind is ContextKind.SERVER_CHILD, pid
        assert lineage.reason == "python3 web.py listens on 0.0.0.0:8080"
    accepted = classifier.lineage_of(entity(704))
    assert accepted.kind is ContextKind.SERVER_CHILD
    assert accepted.reason == "apache2 accepted a connection from 192.0.2.7:40000"


def test_a_pre_existing_session_without_a_terminal_and_a_daemons_pty_are_not_admin() -> None:
    classifier = _run(
        INIT_LISTENING,
        _running(800, 1, "/usr/sbin/sshd", "-D", listens="0.0.0.0:22"),
        _running(801, 800, "/usr/sbin/sshd", "sshd: root@notty", accepted="192.0.2.9:50000"),
        _running(802, 801, "/usr/bin/bash", "-c", "rsync --server"),
        _running(810, 1, "/usr/bin/python3", "/opt/agent.py"),
        _running(811, 810, "/usr/bin/bash", tty="pts4"),
    )
    assert classifier.lineage_of(entity(802)).kind is ContextKind.NONE
    assert classifier.lineage_of(entity(811)).kind is ContextKind.SERVICE


def test_a_process_whose_own_events_came_first_keeps_the_stronger_context() -> None:
    """The records race the /proc scan: a process already raised by what it did keeps it;
    an own-cgroup mark is kept."""
    classifier = _run(
        INIT_LISTENING,
        make_event(Action.RECV, pid=900, ip="192.0.2.7", port=443, ts=2),
        _running(900, 1, "/usr/bin/curl", "https://example.org"),
        _running(901, 1, "/usr/bin/python3", "-m", "provarmor", "agent"),
    )
    assert classifier.lineage_of(entity(900)).kind is ContextKind.REMOTE_INPUT
    own = _running(902, 1, "/usr/bin/python3", "-m", "provarmor", "agent")
    own = msgspec.structs.replace(own, process=msgspec.structs.replace(own.process, provarmor=True))
    classifier.observe(own)
    assert classifier.lineage_of(entity(902)).kind is ContextKind.OWN
    assert classifier.lineage_of(entity(901)).kind is ContextKind.SERVICE


def test_an_archiver_writing_an_archive_here_is_a_backup_that_its_children_inherit() -> None:
    """``tar czf FILE /etc/ssh /etc/shadow`` from a shell with no known context (a script,
    a remote-execution channel): a backup, and the compressor tar runs is part of it."""
    classifier = _run(
        _exec(170, "/bin/bash", "nightly.sh"),
        _fork(171, 170, ts=3),
        _exec(171, "/usr/bin/tar", "czf", "/var/backups/etc.tgz", "/etc", ts=4),
        _fork(172, 171, exe="/usr/bin/tar", ts=5),
        _exec(172, "/usr/bin/gzip", ts=6),
    )
    lineage = classifier.lineage_of(entity(172))
    assert (lineage.kind, lineage.effect) == (ContextKind.BACKUP, Effect.LOWER)
    assert lineage.explain() == (
        "backup to an archive on this host: tar -> gzip (tar writes /var/backups/etc.tgz)"
    )
    assert classifier.lineage_of(entity(170)).kind is ContextKind.NONE


def test_an_archive_to_standard_output_under_a_web_shell_or_on_its_own_terminal_is_not() -> None:
    """The same tar from a web server's shell keeps the raising context; ``tar czf -`` (what
    a pipe into nc sends) and a tar on a terminal a shell gave itself lower nothing."""
    classifier = _run(
        _exec(180, "/usr/bin/python3", "web.py"),
        make_event(Action.ACCEPT, pid=180, ip="192.0.2.7", port=50020, ts=3),
        _fork(181, 180, ts=4),
        _exec(181, "/usr/bin/tar", "czf", "/tmp/b.tgz", "/etc/ssh", ts=5),
        _exec(190, "/bin/bash", "implant.sh", ts=6),
        _fork(191, 190, ts=7),
        _exec(191, "/usr/bin/tar", "czf", "-", "/etc/ssh", ts=8),
        _fork(192, 190, ts=9),
        _on(_exec(192, "/usr/bin/tar", "czf", "/tmp/b.tgz", "/etc/ssh", ts=10), "pts5"),
    )
    assert classifier.lineage_of(entity(181)).kind is ContextKind.SERVER_CHILD
    assert classifier.lineage_of(entity(191)).kind is ContextKind.NONE
    assert classifier.lineage_of(entity(192)).kind is ContextKind.NONE
