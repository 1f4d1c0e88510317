"""The console end to end: a real manager (uvicorn on 127.0.0.1, SQLite in tmp_path) that
received the real lab capture through its agent API, and Debian's Chromium (headless, driven
by Playwright) signing in, opening the incident, checking the graph and the timeline,
expanding the graph, acknowledging the incident and adding a note; then an admin marking it
benign and confirming a proposed exception. Screenshots of the incident page and the
exceptions page are saved to tests/artifacts/.

Without /usr/bin/chromium or Playwright the test skips, except under CI, where it fails.
"""

import gzip
import os
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from provarmor.manager.app import create_app
from provarmor.manager.auth import Role
from provarmor.manager.console import mount_console
from provarmor.manager.database import open_findings_store
from provarmor.manager.detectors import load_detection
from provarmor.manager.routes.tokens import create_token
from provarmor.manager.settings import ManagerSettings

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
LAB = Path(__file__).parents[3] / "data" / "lab" / "nodlink-ubuntu-seed1"
LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"
ARTIFACTS = Path(__file__).parents[3] / "artifacts"
VIEWPORT = {"width": 1366, "height": 768}
BATCH = 1000
# Collects Content-Security-Policy violations; Playwright runs it before the page's scripts.
WATCH_POLICY = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
    (event) => window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`));
"""


def _needs(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI needs the browser test: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sync_playwright():
    if not CHROMIUM.exists():
        _needs(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _needs("playwright is not installed (pip install playwright)")
    return sync_playwright


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    """A live manager on a free loopback port; yields its URL and an admin token."""
    state = tmp_path_factory.mktemp("manager")
    settings = ManagerSettings(state_dir=state, database_url=f"sqlite:///{state / 'manager.db'}")
    store = open_findings_store(settings.effective_database_url())
    app = create_app(settings, store, kit=load_detection(settings))
    mount_console(app)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", ws="none", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]
    yield {"url": f"http://127.0.0.1:{port}", "admin": create_token(store, role=Role.ADMIN).token}
    server.should_exit = True
    thread.join(timeout=10)
    app.state.context.ingestor.close()
    store.close()


def _upload_lab_capture(url: str, admin: str) -> None:
    """Enrol an agent and send the real capture as its batches, then its sensor status."""
    lines = gzip.decompress((LAB / "events.ndjson.gz").read_bytes()).splitlines(keepends=True)
    with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as api:
        enrolment = api.post(
            "/enrollment-tokens", json={}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert enrolment.status_code == 201, enrolment.text
        agent = api.post(
            "/enroll",
            json={"token": enrolment.json()["token"], "host_id": LAB_HOST, "hostname": "lab-vm"},
        ).json()
        credential = {"Authorization": f"Bearer {agent['credential']}"}
        for start in range(0, len(lines), BATCH):
            answer = api.post(
                f"/agents/{agent['agent_id']}/batches",
                content=b"".join(lines[start : start + BATCH]),
                headers=credential | {"X-Batch-Sequence": str(start + BATCH)},
            )
            assert answer.status_code == 200, answer.text
        status = {"sensor": "ebpf", "healthy": True, "counters": {"events": len(lines)}}
        answer = api.post(f"/agents/{agent['agent_id']}/status", json=status, headers=credential)
        assert answer.status_code == 204


@pytest.fixture(scope="module")
def lab_manager(manager):
    """The manager after the upload, an analyst token, and the incident the capture made."""
    _upload_lab_capture(manager["url"], manager["admin"])
    admin = {"Authorization": f"Bearer {manager['admin']}"}
    with httpx.Client(base_url=f"{manager['url']}/api/v1", headers=admin) as api:
        analyst = api.post("/tokens", json={"role": "analyst", "label": "console test"})
        incidents = api.get("/incidents").json()
        assert len(incidents) == 1
        incident = api.get(f"/incidents/{incidents[0]['id']}").json()
    return manager | {"analyst": analyst.json()["token"], "incident": incident}


def _incident_status(lab_manager) -> dict:
    url = f"{lab_manager['url']}/api/v1/incidents/{lab_manager['incident']['id']}"
    answer = httpx.get(url, headers={"Authorization": f"Bearer {lab_manager['analyst']}"})
    return answer.json()


def _graph(page, expression: str):
    return page.evaluate(f"(() => {{ const cy = window.provarmorGraph; return {expression}; }})()")


def test_analyst_opens_the_lab_incident_in_the_console(sync_playwright, lab_manager):
    base = lab_manager["url"]
    incident = lab_manager["incident"]
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(20_000)
        page.add_init_script(WATCH_POLICY)
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )

        # a wrong token is refused on the login page; the analyst's token signs in
        page.goto(f"{base}/")
        page.fill("#token", "pa.0000000000000000." + "0" * 64)
        page.click("#signin")
        page.wait_for_selector("#login-message:not([hidden])")
        assert "refused" in page.text_content("#login-message")
        page.fill("#token", lab_manager["analyst"])
        page.click("#signin")
        page.wait_for_selector("#dashboard-chart, .chart")
        assert page.evaluate("sessionStorage.getItem('provarmor.token')") == lab_manager["analyst"]

        # the incident list, then the incident
        page.click("nav >> text=Incidents")
        page.wait_for_selector("#incident-table a.incident-link")
        assert page.locator("#incident-table tbody tr").count() == 1
        page.click("#incident-table a.incident-link")
        page.wait_for_function(
            "() => window.provarmorGraph && window.provarmorGraph.nodes().length > 0"
        )
        assert page.url.endswith(f"#/incidents/{incident['id']}")

        # the graph: the root cause is drawn, highlighted and labelled; kinds have their shapes
        roots = _graph(page, "cy.nodes('[role = \"root_cause\"]').map((node) => node.id())")
        assert roots == [incident["root_cause"]]
        box = _graph(page, "cy.nodes('[role = \"root_cause\"]').renderedBoundingBox()")
        size = _graph(page, "({w: cy.width(), h: cy.height()})")
        assert box["w"] > 5 and box["h"] > 5
        assert 0 <= box["x1"] < size["w"] and 0 <= box["y1"] < size["h"]
        root_style = _graph(
            page,
            "(() => { const n = cy.nodes('[role = \"root_cause\"]'); return {"
            "border: n.style('border-color'), width: parseFloat(n.style('border-width')),"
            "label: n.style('label')}; })()",
        )
        assert root_style["border"] == "rgb(220,38,38)"
        assert root_style["width"] >= 5
        assert root_style["label"].startswith("root cause")
        shapes = _graph(
            page,
            "Object.fromEntries(['process', 'file', 'socket'].map((kind) =>"
            " [kind, cy.nodes(`[kind = \"${kind}\"]`).first().style('shape')]))",
        )
        assert shapes == {"process": "ellipse", "file": "rectangle", "socket": "diamond"}
        terminals = sum(node.get("role") == "terminal" for node in incident["nodes"])
        assert _graph(page, "cy.nodes('[role = \"terminal\"]').length") == terminals

        # the timeline lists every step of the incident
        rows = page.locator("#timeline tbody tr")
        assert rows.count() == len(incident["steps"]) > 10
        first = incident["steps"][0]
        assert first["text"] in rows.nth(0).text_content()

        # the root cause's panel: its events, and expanding backward adds its parent
        page.wait_for_selector("#node-panel #expand-backward")
        page.wait_for_selector("#node-panel table.events tbody tr td.nowrap")
        before = _graph(page, "cy.nodes().length")
        page.click("#node-panel #expand-backward")
        page.wait_for_function(f"() => window.provarmorGraph.nodes().length > {before}")
        assert _graph(page, "cy.nodes('[?context]').length") >= 1

        # acknowledge through the status select; the API agrees
        page.select_option("#incident-status", "acknowledged")
        page.wait_for_selector("#status-saved:has-text('saved: acknowledged')")
        assert _incident_status(lab_manager)["status"] == "acknowledged"

        # a note, escaped as text
        page.click("button[role=tab]:has-text('Notes')")
        page.fill("#note-text", "<b>checked</b> the curl download")
        page.click("button:has-text('Add note')")
        page.wait_for_selector("#notes li")
        assert "<b>checked</b> the curl download" in page.text_content("#notes")
        assert page.locator("#notes b").count() == 0
        assert _incident_status(lab_manager)["notes"][0]["text"].startswith("<b>checked</b>")

        # usable at 1366x768: nothing wider than the window
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
        page.click("button[role=tab]:has-text('Timeline')")
        page.evaluate("window.scrollTo(0, 0)")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-incident.png"))

        # the host page: the anomaly model is learning this host (24 h window, event time)
        page.evaluate(f"location.hash = '#/hosts/{LAB_HOST}'")
        page.wait_for_selector("#learning table")
        learning = page.text_content("#learning")
        assert "learning, 23 h 59 min left" in learning
        assert "left of 24 h 00 min (event time)" in learning
        assert "2142 events" in learning
        page.evaluate("location.hash = '#/hosts'")
        page.wait_for_selector("td >> text=learning, 23 h 59 min left")

        # a token the manager refuses (401) brings the user back to sign in, with a message
        page.evaluate(
            "sessionStorage.setItem('provarmor.token', 'pa.0000000000000000.' + '0'.repeat(64))"
        )
        page.goto(f"{base}/#/alerts")
        page.wait_for_selector("#login-message:not([hidden])")
        assert "401" in page.text_content("#login-message")

        violations = page.evaluate("window.__violations")
        browser.close()
    assert violations == []
    # the only errors the browser logs are the 401 answers to the refused tokens above
    assert [error for error in errors if "status of 401 (Unauthorized)" not in error] == []
    assert requests and all(url.startswith(f"{base}/") for url in requests), [
        url for url in requests if not url.startswith(f"{base}/")
    ]


def test_admin_marks_the_incident_benign_and_confirms_an_exception(sync_playwright, lab_manager):
    """Mark benign on the incident page proposes one exception per rule, scoped by the
    story's provenance; confirming one makes it active and the exceptions page lists it."""
    base = lab_manager["url"]
    incident = lab_manager["incident"]
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(20_000)
        page.add_init_script(WATCH_POLICY)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/")
        page.fill("#token", lab_manager["admin"])
        page.click("#signin")
        page.wait_for_selector("#dashboard-chart, .chart")
        page.goto(f"{base}/#/incidents/{incident['id']}")
        page.click("button[role=tab]:has-text('Mark benign')")
        page.fill("#benign-reason", "lab exercise, not an intrusion")
        page.click("#mark-benign")
        page.wait_for_selector(".exception-card")
        assert page.text_content("#incident-status-badge") == "false_positive"
        cards = page.locator(".exception-card")
        proposed = cards.count()
        assert proposed == len({a.split("@")[0] for a in incident["alert_ids"]})
        program = page.locator("textarea[data-field=executables]:has-text('irqbalance-d4')")
        dropped = cards.filter(has=program)
        assert dropped.count() == 1
        assert (
            "/tmp/.portal-*/irqbalance-d4"
            in dropped.locator("[data-field=executables]").input_value()
        )
        ARTIFACTS.mkdir(exist_ok=True)
        dropped.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "console-benign.png"))
        dropped.locator("button.confirm").click()
        dropped.locator(".flash:has-text('confirmed')").wait_for()
        assert _incident_status(lab_manager)["status"] == "false_positive"

        page.click("nav >> text=Exceptions")
        page.wait_for_selector("#exception-table tbody tr td.mono")
        assert page.locator("#exception-table tbody tr").count() == proposed
        active = page.locator("#exception-table tbody tr:has(.ex-active)")
        assert active.count() == 1
        assert "/tmp/.portal-*/irqbalance-d4" in active.text_content()
        assert "lab exercise" in active.text_content()
        assert "Hidden program executed from a temporary directory" in active.text_content()
        assert page.locator("#audit-table tbody tr:has-text('confirmed')").count() == 1
        assert page.locator("#audit-table tbody tr:has-text('edited')").count() == 0
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
        page.screenshot(path=str(ARTIFACTS / "console-exceptions.png"), full_page=True)
        violations = page.evaluate("window.__violations")
        browser.close()
    assert violations == []
    assert errors == []
