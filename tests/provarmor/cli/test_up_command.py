"""The main job end to end (root): `provarmor up` runs the live agent, the manager and the
console; its demo attack (a real lab scenario) becomes an incident the API serves; a kill
asked for through the API is run by the live agent on a real process."""

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from provarmor.cli.up_command import announce
from provarmor.response.action import build_context
from provarmor.response.settings import ResponseSettings
from provarmor.sources.procfs import read_process

ROOT = Path(__file__).resolve().parents[3]
TOKEN = re.compile(r"login token: (\S+)")
WHOLE_TOKEN = re.compile(r"^pa\.[0-9a-f]{16}\.[0-9a-f]{64}$")
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
UPLOAD_SETTLE_S = 20
"""The agent uploads its spool every few seconds and the manager analyses in batches."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _open_in_browser(base: str, token: str, incident: dict, tmp_path: Path) -> None:
    """The analyst's view: log in, open the incident, see its root cause and timeline."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {CHROMIUM}", pytrace=False)
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.set_default_timeout(30_000)
        page.goto(f"{base}/")
        page.fill("#token", token)
        page.click("#signin")
        page.wait_for_selector("#dashboard-chart, .chart")
        page.evaluate(f"location.hash = '#/incidents/{incident['id']}'")
        page.wait_for_function(
            "() => window.provarmorGraph && window.provarmorGraph.nodes().length > 0"
        )
        roots = page.evaluate(
            "window.provarmorGraph.nodes('[role = \"root_cause\"]').map((n) => n.id())"
        )
        assert roots == [incident["root_cause"]]
        page.screenshot(path=str(tmp_path / "up-incident.png"))
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "up-incident.png"))
        browser.close()


def _collect(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def _wait_for(lines: list[str], text: str, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for line in lines):
            return True
        time.sleep(1)
    return False


def _kill_through_the_agent(api: httpx.Client, host_id: str) -> None:
    """The running agent fetches a kill from the manager with its next status report and
    kills the real process; the action's result comes back."""
    context = build_context(ResponseSettings())
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        info = read_process(victim.pid, clock=context.clock)
        assert info is not None
        target = {"type": "process", "pid": victim.pid, "entity_id": info.entity_id(context.host)}
        proposed = api.post(
            "/api/v1/actions", json={"kind": "kill", "target": target, "host_id": host_id}
        )
        assert proposed.status_code == 201, proposed.text
        action = proposed.json()["id"]
        assert api.post(f"/api/v1/actions/{action}/execute", json={}).status_code == 200
        assert victim.wait(timeout=30) == -signal.SIGKILL
        deadline = time.monotonic() + 30
        while api.get(f"/api/v1/actions/{action}").json()["state"] != "done":
            assert time.monotonic() < deadline, api.get(f"/api/v1/actions/{action}").text
            time.sleep(0.5)
    finally:
        victim.kill()
        victim.wait()


def _is_attack(detail: dict) -> bool:
    techniques = {t["id"] for t in detail.get("techniques", [])}
    return bool(detail.get("root_cause")) and "T1190" in techniques  # the web-shell entry


def _explained(detail: dict) -> str:
    """An incident as a failure message shows it: title, summary, context, alerts, and the
    first steps of its timeline (enough to see which processes and events made it)."""
    steps = [f"  {step['text']}" for step in detail.get("steps", [])[:25]]
    return "\n".join(
        [
            f"{detail['severity']} {detail['title']}: {detail['summary']}",
            f"  context: {detail.get('context', [])}",
            f"  alerts: {detail.get('alert_ids', [])}",
            *steps,
        ]
    )


def test_the_login_token_is_printed_on_one_line_on_a_narrow_terminal():
    out = io.StringIO()
    token = "pa." + "0123456789abcdef" + "." + "ab" * 32
    announce(Console(file=out, width=30), url="http://127.0.0.1:8443", token=token)
    lines = out.getvalue().splitlines()
    assert f"login token: {token}" in lines
    assert "console: http://127.0.0.1:8443/" in lines


def test_up_state_directory_is_ignored_by_git():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    checked = subprocess.run(
        ["git", "check-ignore", "-q", "provarmor-state/agent/uplink.json"], cwd=ROOT, check=False
    )
    assert checked.returncode == 0


@pytest.mark.privileged
def test_scripts_up_without_root_and_without_sudo_says_how_to_run_it():
    """A real non-root user (nobody) whose PATH has no sudo."""
    tools = Path(tempfile.mkdtemp(prefix="provarmor-up-path-"))
    try:
        tools.chmod(0o755)
        for name in ("bash", "env", "id", "dirname"):
            found = shutil.which(name)
            assert found is not None
            (tools / name).symlink_to(found)
        result = subprocess.run(
            [
                *["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
                *["env", "-i", f"PATH={tools}", str(ROOT / "scripts" / "up")],
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    finally:
        shutil.rmtree(tools)
    assert result.returncode == 1
    assert "needs root" in result.stderr and "sudo is not installed" in result.stderr
    assert "su -c ./scripts/up" in result.stderr


@pytest.mark.privileged
@pytest.mark.slow
@pytest.mark.exclusive  # every incident of the host: another test's programs would be some
def test_up_shows_the_incident_of_a_real_attack(tmp_path):
    if os.geteuid() != 0 or shutil.which("bpftrace") is None:
        pytest.skip("the live agent needs root and bpftrace")
    port = _free_port()
    command = [sys.executable, "-m", "provarmor", "up", "--state-dir", str(tmp_path / "state")]
    command += ["--listen", f"127.0.0.1:{port}", "--demo-attack", "nodlink-ubuntu"]
    command += ["--sensor", "ebpf", "--duration", "300"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "40"},  # a narrow terminal must not wrap the token
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        threading.Thread(target=_collect, args=(process.stdout, lines), daemon=True).start()
        assert _wait_for(lines, "login token: ", timeout=60), "no login token printed"
        found = next(TOKEN.search(line) for line in lines if TOKEN.search(line))
        token = found.group(1)
        assert WHOLE_TOKEN.match(token), f"the login token was cut: {token!r}"
        # no model configured: the manager learns this host, and up prints the time left
        assert _wait_for(lines, "LEARNING", timeout=60), "".join(lines)
        learning = next(line for line in lines if "LEARNING" in line)
        assert re.search(
            r"LEARNING this host's baseline, \d+ h \d+ min left of 24 h 00 min", learning
        )
        story: dict | None = None
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
        ) as api:
            page = api.get("/")
            assert page.status_code == 200
            finished = _wait_for(lines, "demo attack finished", timeout=240)
            assert finished, "the demo attack did not finish:\n" + "".join(lines[-20:])
            deadline = time.monotonic() + 90
            while story is None and time.monotonic() < deadline:
                time.sleep(3)
                for summary in api.get("/api/v1/incidents").json():
                    detail = api.get(f"/api/v1/incidents/{summary['id']}").json()
                    if _is_attack(detail):
                        story = detail
                        break
            assert story is not None, "the demo attack produced no incident"
            # the lab's set-up and clean-up, the agent and the manager raise none: once the
            # agent's last uploads are analysed, the attack's is the only incident
            time.sleep(UPLOAD_SETTLE_S)
            incidents = [
                api.get(f"/api/v1/incidents/{s['id']}").json()
                for s in api.get("/api/v1/incidents").json()
            ]
            assert len(incidents) == 1, "\n\n".join(map(_explained, incidents))
            assert _is_attack(incidents[0])
            hosts = api.get("/api/v1/hosts").json()
            assert "ebpf" in str(hosts)
            _kill_through_the_agent(api, story["host_id"])
        _open_in_browser(f"http://127.0.0.1:{port}", token, story, tmp_path)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
