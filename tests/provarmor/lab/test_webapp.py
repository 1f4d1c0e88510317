import io
import shutil

import pytest

from provarmor.lab.webapp import App, is_allowed_target


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.213.0.9", "127.0.0.1; id"])
def test_the_check_only_anchors_the_start(host):
    assert is_allowed_target(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "; id", "example.com", " 127.0.0.1"])
def test_other_targets_are_refused(host):
    assert not is_allowed_target(host)


@pytest.mark.skipif(shutil.which("ping") is None, reason="needs ping")
def test_the_ping_handler_is_injectable_and_logs_the_shell_it_started(tmp_path):
    spawns = io.StringIO()
    app = App(database=str(tmp_path / "app.db"), access=io.StringIO(), spawns=spawns)
    output = app.ping("127.0.0.1; echo injected-$((6*7))", 43210)
    assert "injected-42" in output
    port, pid, start = spawns.getvalue().split()
    assert port == "43210" and int(pid) > 1 and int(start) > 0


def test_notes_are_stored_in_sqlite(tmp_path):
    app = App(database=str(tmp_path / "app.db"), access=io.StringIO(), spawns=io.StringIO())
    app.notes("first")
    assert app.notes("second") == ["second", "first"]
    assert (tmp_path / "app.db").exists()
