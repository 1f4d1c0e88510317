import subprocess
import time

import msgspec
import pytest

from provarmor.lab import cleanup
from provarmor.lab.environment import STATE_DIR, RunState
from provarmor.lab.jail import ProcessJail, leftover_jails
from provarmor.lab.netns import lab_namespaces

pytestmark = pytest.mark.privileged


def test_cleanup_undoes_a_crashed_run(lab_machine, tmp_path):
    jail = ProcessJail("pytest-crash")
    sleeper = jail.spawn(["sleep", "120"])
    subprocess.run(["ip", "netns", "add", "provarmor-lab-pytest"], check=True)
    artifact = tmp_path / "drop" / "agent"
    artifact.parent.mkdir()
    artifact.write_text("x")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    state = STATE_DIR / "state-pytest.json"
    state.write_bytes(
        msgspec.json.encode(
            RunState(
                run_id="pytest",
                run_dir=str(tmp_path / "run"),
                artifacts=(str(artifact.parent),),
                jails=(jail.name,),
            )
        )
    )
    removed = cleanup()
    time.sleep(0.1)
    assert sleeper.poll() is not None
    assert "provarmor-lab-pytest" not in lab_namespaces()
    assert not artifact.parent.exists() and not state.exists()
    assert leftover_jails() == []
    assert "netns provarmor-lab-pytest" in removed
