"""The standalone agent with ``--response-policy`` on the real kernel: a hidden program run
from /tmp raises a high rule, the agent's own analysis makes an incident of it, and the
enforce policy kills the program; the audit trail says who, why and the outcome, and the
containment time is measured. Run under the shared lock
(``flock /tmp/provarmor-live.lock .venv/bin/pytest ...``)."""

import contextlib
import os
import shutil
import subprocess
import threading
import time

import pytest

from provarmor.agent.response_sink import ResponseSetup
from provarmor.agent.runner import Agent
from provarmor.agent.sensors import SensorUnavailable
from provarmor.agent.settings import AgentSettings
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.pipeline.assembly import AnalysisPlan
from provarmor.response.action import build_context
from provarmor.response.audit import Phase, read_audit
from provarmor.response.policy import parse_policy
from provarmor.response.records import ActionKind, Outcome
from provarmor.response.responder import Responder
from provarmor.response.settings import ResponseSettings

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

POLICY = """\
mode: enforce
rules:
  - name: kill hidden implants
    severity: high
    techniques: [T1564]
    actions: [kill]
"""


@pytest.mark.exclusive  # an enforcing agent watches the whole host: no other test's programs
def test_the_agent_kills_an_implant_its_analysis_found(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the agent needs root")
    response = ResponseSettings(state_dir=tmp_path / "response", nft_command=("false",))
    setup = ResponseSetup(
        plan=AnalysisPlan(rules=(bundled_rules(),)),
        responder=Responder.open(
            parse_policy(POLICY, source="policy.yaml"), build_context(response)
        ),
    )
    settings = AgentSettings(state_dir=tmp_path / "state", status_interval_seconds=0.5)
    agent = Agent(settings, response=setup)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            agent.run(stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    implant = None
    implant_path = f"/tmp/.pa-response-{os.getpid()}"  # the rule: hidden program under /tmp
    try:
        deadline = time.monotonic() + 90
        while agent.run_state.status is None and not errors and time.monotonic() < deadline:
            time.sleep(0.2)
        if errors and isinstance(errors[0], SensorUnavailable):  # root checked above
            pytest.fail(f"no sensor could start: {errors[0]}")
        assert agent.run_state.status is not None, errors
        program = shutil.copy("/bin/sleep", implant_path)
        bystander = subprocess.Popen(["sleep", "300"])
        started = time.monotonic()
        implant = subprocess.Popen([program, "300"])
        try:
            implant.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the implant was not contained within 60 s")
        contained = time.monotonic() - started
        assert implant.returncode == -9
        assert bystander.poll() is None, "a process outside the incident was hit"
        bystander.kill()
        bystander.wait()
        records, errors_read = read_audit(response.audit_file)
        assert errors_read == []
        (kill,) = [r for r in records if r.phase is Phase.RESULT]
        assert kill.request.kind is ActionKind.KILL and kill.outcome is Outcome.DONE
        assert kill.request.target.pid == implant.pid
        assert kill.request.requested_by == "policy:kill hidden implants"
        assert "Hidden program" in kill.request.reason
        sensor = agent.run_state.status.sensor
        print(f"containment ({sensor} sensor): {contained:.2f} s after the implant started")
    finally:
        stop.set()
        thread.join(timeout=120)
        if implant is not None and implant.poll() is None:
            implant.kill()
            implant.wait()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(implant_path)
    assert not errors, errors
    counters = agent.run_state.status.counters if agent.run_state.status else {}
    assert counters.get("response.done") == 1
