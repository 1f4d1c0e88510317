"""File outputs: every registered format is writable through them, appending keeps what a
file holds, a document per incident is replaced whole by each version, and a format added to
a registry is available with no other edit."""

import errno
import io
import json
import os
import subprocess

import msgspec
import pytest

from provarmor.model.alert import Alert
from provarmor.model.errors import ConfigError
from provarmor.model.incident import Incident, IncidentNode, NodeRole
from provarmor.outputs import alert_formats, incident_formats
from provarmor.outputs.alert_formats import FORMATS
from provarmor.outputs.files import AlertFile, IncidentFile
from provarmor.outputs.incident_formats import INCIDENT_FORMATS, IncidentRendering

ALERT = Alert(
    id="r1:e9",
    rule_id="r1",
    rule_title="Download to /tmp then execute",
    level="high",
    host_id="h1",
    event_ids=("e9",),
    first_timestamp=1_700_000_000_000_000_000,
    last_timestamp=1_700_000_000_000_000_000,
)


def incident(version: int, title: str = "Shell from a web server") -> Incident:
    return Incident(
        id="inc-c1",
        campaign_id="c1",
        host_id="h1",
        title=title,
        summary="A shell started by nginx ran curl.",
        severity="high",
        score=12.0,
        first_ts=1,
        last_ts=2,
        updated_ts=2,
        root_cause="p1",
        version=version,
        nodes=(IncidentNode(id="p1", kind="process", label="/bin/sh", role=NodeRole.ROOT_CAUSE),),
    )


def json_lines(text: str) -> list[object]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_alert_format_is_written_as_json_lines(tmp_path, name):
    path = tmp_path / "alerts.jsonl"
    output = AlertFile(path, format=name)
    output.alert(ALERT)
    output.incident(incident(1))  # not its business
    output.close()
    expected = json.loads(msgspec.json.encode(FORMATS[name](ALERT)))
    assert json_lines(path.read_text()) == [expected]


def test_appending_keeps_the_alerts_already_in_the_file(tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"earlier": true}\n')
    output = AlertFile(path, format="ecs", append=True)
    output.alert(ALERT)
    assert len(path.read_text().splitlines()) == 2  # flushed: a reader sees it at once
    output.close()
    assert json_lines(path.read_text())[0] == {"earlier": True}


def test_a_stream_is_flushed_and_left_open():
    stream = io.BytesIO()
    output = AlertFile(stream, format="falco")
    output.alert(ALERT)
    output.close()
    assert not stream.closed
    assert json_lines(stream.getvalue().decode())[0]["rule"] == ALERT.rule_title


@pytest.mark.parametrize(
    "name", sorted(name for name, kind in INCIDENT_FORMATS.items() if not kind.document)
)
def test_json_incident_formats_write_one_line_per_version(tmp_path, name):
    path = tmp_path / "incidents.jsonl"
    output = IncidentFile(path, format=name)
    output.alert(ALERT)  # not its business
    output.incident(incident(1))
    output.incident(incident(2))
    output.close()
    render = INCIDENT_FORMATS[name].render
    expected = [json.loads(msgspec.json.encode(render(incident(v)))) for v in (1, 2)]
    assert json_lines(path.read_text()) == expected


@pytest.mark.parametrize(
    "name", sorted(name for name, kind in INCIDENT_FORMATS.items() if kind.document)
)
def test_document_formats_keep_one_file_per_incident_with_its_latest_version(tmp_path, name):
    folder = tmp_path / "incidents"
    output = IncidentFile(folder, format=name)
    output.incident(incident(1, title="first"))
    output.incident(incident(2, title="second"))
    output.close()
    assert [path.name for path in folder.iterdir()] == [f"inc-c1.{name}"]
    text = (folder / f"inc-c1.{name}").read_text()
    assert text == INCIDENT_FORMATS[name].render(incident(2, title="second"))
    assert "second" in text


def test_an_unknown_format_is_refused_naming_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown alert format 'cef'; known: ecs, ocsf, falco"):
        AlertFile(tmp_path / "a.jsonl", format="cef")
    with pytest.raises(ConfigError, match=r"unknown incident format 'pdf'; known: json, ocsf"):
        IncidentFile(tmp_path / "i", format="pdf")


def test_a_format_added_to_a_registry_is_written_with_no_other_edit(tmp_path, monkeypatch):
    monkeypatch.setitem(alert_formats.FORMATS, "brief", lambda alert: {"rule": alert.rule_id})
    monkeypatch.setitem(
        incident_formats.INCIDENT_FORMATS,
        "text",
        IncidentRendering(lambda found: f"{found.id}: {found.title}\n", document=True),
    )
    alerts = AlertFile(tmp_path / "a.jsonl", format="brief")
    alerts.alert(ALERT)
    alerts.close()
    incidents = IncidentFile(tmp_path / "stories", format="text")
    incidents.incident(incident(1))
    incidents.close()
    assert json_lines((tmp_path / "a.jsonl").read_text()) == [{"rule": "r1"}]
    assert (tmp_path / "stories" / "inc-c1.text").read_text() == (
        "inc-c1: Shell from a web server\n"
    )


def _write_forever(out) -> None:
    while True:
        out.write(b"\0" * 4096)


@pytest.fixture
def nearly_full_disk(tmp_path):
    """A 1 MiB tmpfs with 8 KiB left; ``free()`` gives the rest back."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    filler = mount / "filler"
    try:
        with filler.open("wb", buffering=0) as out, pytest.raises(OSError) as full:
            _write_forever(out)
        assert full.value.errno == errno.ENOSPC
        os.truncate(filler, filler.stat().st_size - 8192)
        yield mount, filler.unlink
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_fails_the_write_and_leaves_no_half_line(nearly_full_disk):
    mount, free = nearly_full_disk
    path = mount / "alerts.jsonl"
    big = msgspec.structs.replace(ALERT, description="x" * 20_000)  # more than the room left
    output = AlertFile(path, format="ecs")
    with pytest.raises(OSError) as failed:
        output.alert(big)
    assert failed.value.errno == errno.ENOSPC
    assert path.read_bytes() == b""
    free()
    output.alert(big)
    output.close()
    assert [line["rule"]["id"] for line in json_lines(path.read_text())] == ["r1"]
