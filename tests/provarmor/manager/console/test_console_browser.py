"""The console end to end: a real manager (uvicorn on 127.0.0.1, SQLite in tmp_path) that
received the real lab capture through its agent API, and Debian's Chromium (headless, driven
by Playwright) signing in, opening the incident, checking the graph and the timeline,
expanding the graph, acknowledging the incident and adding a note; then an admin marking it
benign and confirming a proposed exception. Screenshots of the incident page and the
exceptions page are saved to tests/artifacts/.

Without /usr/bin/chromium or Playwright the test skips, except under CI, where it fails.
"""

import dataclasses
import gzip
import json
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
from provarmor.manager.console.routes import CONTENT_SECURITY_POLICY
from provarmor.manager.database import open_findings_store
from provarmor.manager.detectors import load_detection
from provarmor.manager.routes.tokens import create_token
from provarmor.manager.settings import ManagerSettings
from provarmor.manager.store import BatchCommit

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
    yield {
        "url": f"http://127.0.0.1:{port}",
        "admin": create_token(store, role=Role.ADMIN).token,
        "store": store,
    }
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


def test_api_docs_render_from_the_manager_alone(sync_playwright, manager):
    """/docs (Swagger UI) draws every operation under the console's Content-Security-Policy
    (with data: images allowed for its icons), with no violation and no request to anywhere
    but the manager."""
    base = manager["url"]
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
        answer = page.goto(f"{base}/docs")
        assert answer is not None
        assert answer.headers["content-security-policy"] == (
            f"{CONTENT_SECURITY_POLICY}; img-src 'self' data:"
        )
        page.wait_for_selector(".opblock-summary-path")
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/api/v1/enroll" in paths
        assert "/api/v1/agents/{agent_id}/batches" in paths
        page.locator(".opblock-summary-path", has_text="/api/v1/tokens").first.click()
        page.wait_for_selector(".opblock.is-open")
        page.wait_for_load_state("networkidle")
        violations = page.evaluate("window.__violations")
        browser.close()
    assert violations == []
    assert errors == []
    assert [url for url in requests if not url.startswith(f"{base}/")] == []
    assert f"{base}/openapi.json" in requests


def _merge_an_older_id_into(lab_manager, older: str) -> None:
    """Record, as the analysis does when two campaigns merge, that ``older`` was merged into
    the lab incident."""
    store = lab_manager["store"]
    row = store.incident(lab_manager["incident"]["id"])
    story = json.loads(row.json)
    story["merged_ids"] = [*story.get("merged_ids", []), older]
    merged = dataclasses.replace(row, json=json.dumps(story))
    with httpx.Client(base_url=f"{lab_manager['url']}/api/v1") as api:
        admin = {"Authorization": f"Bearer {lab_manager['admin']}"}
        token = api.post("/enrollment-tokens", json={}, headers=admin).json()["token"]
        agent = api.post(
            "/enroll", json={"token": token, "host_id": "merge-host", "hostname": "merge-host"}
        ).json()
    assert store.commit_batch(
        BatchCommit(agent_id=agent["agent_id"], sequence=1, received_ns=1, incidents=[merged])
    )


def _no_row_above_the_header(page, table: str) -> bool:
    """At the top edge of the table's scrolling box (or under the top bar) the header is
    what shows, never a row scrolled past it."""
    return page.evaluate(
        """(selector) => {
            const head = document.querySelector(`${selector} thead th`);
            const rect = head.getBoundingClientRect();
            const probe = document.elementFromPoint(rect.left + 4, Math.max(rect.top - 3, 0));
            const under = document.elementFromPoint(rect.left + 4, rect.top + 2);
            return !probe.closest(`${selector} tbody`) && Boolean(under.closest("thead"));
        }""",
        table,
    )


def test_first_contact_names_orders_and_layout(sync_playwright, lab_manager):
    """What a first-time analyst reads: names instead of ids, one host name, latest alerts
    first, each tactic once, real endpoints only, a merged incident's link that still works,
    a readable graph at Fit, and table headers that nothing scrolls above."""
    base = lab_manager["url"]
    incident = lab_manager["incident"]
    ids = {node["id"] for node in incident["nodes"]}
    _merge_an_older_id_into(lab_manager, "inc-merged-away")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/")
        page.fill("#token", lab_manager["analyst"])
        page.click("#signin")
        page.wait_for_selector("#dashboard-chart, .chart")
        ARTIFACTS.mkdir(exist_ok=True)

        # the incident list names the host by its hostname, the id on hover
        page.goto(f"{base}/#/incidents")
        page.wait_for_selector("#incident-table a.host-name")
        host = page.locator("#incident-table a.host-name").first
        assert host.text_content() == "lab-vm"
        assert LAB_HOST in (host.get_attribute("title") or "")

        # a merged incident's id opens the incident it was merged into
        page.goto(f"{base}/#/incidents/inc-merged-away")
        page.wait_for_selector("#merged-notice")
        page.wait_for_function(
            "() => window.provarmorGraph && window.provarmorGraph.nodes().length"
        )
        assert page.url.endswith(f"#/incidents/{incident['id']}")
        assert page.locator(".incident-head a.host-name").text_content() == "lab-vm"

        # the summary and the timeline say what is known, never an entity id
        summary = page.text_content("#summary")
        assert "entered through pid" not in summary
        cells = page.locator("#timeline tbody td:nth-child(3), #timeline tbody td:nth-child(5)")
        texts = cells.all_text_contents()
        assert texts and not any(text.strip() in ids for text in texts)
        assert not any(" [pid " in text for text in texts)

        # the graph at Fit: laid out from the root cause, labels of 8 px at least
        page.click("#graph-fit")
        zoom = _graph(page, "cy.zoom()")
        assert zoom * 10 >= 8, zoom
        root = _graph(page, "cy.nodes('[role = \"root_cause\"]').position()")
        spans = _graph(
            page,
            "(() => { const ps = cy.nodes().map((n) => n.position()); return {"
            "x: Math.min(...ps.map((p) => p.x)), y: Math.min(...ps.map((p) => p.y))}; })()",
        )
        assert root["x"] == spans["x"] or root["y"] == spans["y"], (root, spans)
        page.screenshot(path=str(ARTIFACTS / "console-incident-fit.png"))

        # ATT&CK: each tactic once, with one name
        page.click("button[role=tab]:has-text('ATT&CK')")
        tactics = page.locator("#tactics .chip").all_text_contents()
        tactic_ids = [text.split(" ")[0] for text in tactics]
        assert len(tactic_ids) == len(set(tactic_ids)), tactics

        # details: only real network peers are "contacted"
        page.click("button[role=tab]:has-text('Details')")
        details = page.text_content(".tabs + div")
        assert "0.0.0.0:0" not in details and "/var/run/nscd/socket" not in details

        # alerts: latest first, the host by name, the rule by title, processes by program
        page.goto(f"{base}/#/alerts")
        page.wait_for_selector("#alert-table tbody tr.clickable")
        times = page.locator("#alert-table tbody td:nth-child(1)").all_text_contents()
        assert times == sorted(times, reverse=True)
        assert set(page.locator("#alert-table a.host-name").all_text_contents()) == {"lab-vm"}
        page.locator("#alert-table tbody tr.clickable").first.click()
        page.wait_for_selector("#alert-detail .rule-name")
        detail = page.locator("#alert-detail")
        rule = detail.locator(".rule-name")
        assert rule.text_content() == page.text_content("#alert-detail h2")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#alert-detail li a')]"
            ".every((a) => !a.textContent.includes('…'))"
        )
        names = detail.locator("li a").all_text_contents()
        assert names and not any(name in ids or name.startswith("process") for name in names)
        assert all("(pid " in name for name in names), names

        # no row above a sticky header, in a scrolling box and when the page scrolls
        page.evaluate("document.querySelector('#alerts-layout > .scroll').scrollTop = 400")
        assert _no_row_above_the_header(page, "#alert-table")
        page.screenshot(path=str(ARTIFACTS / "console-alerts-scrolled.png"))
        page.goto(f"{base}/#/incidents/{incident['id']}")
        page.wait_for_selector("#timeline tbody tr")
        page.evaluate("document.querySelector('.timeline-wrap').scrollTop = 300")
        assert _no_row_above_the_header(page, "#timeline")
        page.wait_for_selector("#node-panel table.events tbody tr td.nowrap")
        page.evaluate("document.querySelector('#node-panel').scrollTop = 400")
        page.screenshot(path=str(ARTIFACTS / "console-tables-scrolled.png"))
        assert _no_row_above_the_header(page, "#node-panel table.events")
        page.goto(f"{base}/#/explorer?host={LAB_HOST}")
        page.wait_for_selector("#event-results tbody tr")
        page.evaluate("document.querySelector('#event-results').scrollTop = 600")
        page.screenshot(path=str(ARTIFACTS / "console-events-scrolled.png"))
        assert _no_row_above_the_header(page, "#event-results table")
        browser.close()
    assert errors == []


def test_analyst_proposes_and_executes_an_action_from_the_incident_page(
    sync_playwright, lab_manager
):
    """The incident page offers the story's processes as targets: an analyst proposes a
    kill and executes it (queued for the host's agent); an isolation waits for an admin,
    whose approval the analyst cannot give; the host page lists both actions."""
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
        page.fill("#token", lab_manager["analyst"])
        page.click("#signin")
        page.wait_for_selector("#dashboard-chart, .chart")
        page.goto(f"{base}/#/incidents/{incident['id']}")
        page.wait_for_selector("#actions td.muted:has-text('No response action yet')")
        offered = page.eval_on_selector_all(
            "#action-targets option", "(o) => o.map((x) => x.value)"
        )
        processes = [n for n in incident["nodes"] if n["kind"] == "process" and n.get("pid")]
        assert len(offered) == len(processes) > 0
        root = processes[0]
        assert offered[0].startswith(f"{root['pid']} {root['id']}")
        page.select_option("#action-kind", "kill")
        page.fill("#action-target", f"{root['pid']} {root['id']}")
        page.fill("#action-reason", "implant")
        page.click("#action-form button[type=submit]")
        row = page.locator("#actions tr[data-state=proposed]")
        row.wait_for()
        assert "kill" in row.text_content()
        row.locator("button[data-step=execute]").click()
        page.wait_for_selector("#actions tr[data-state=queued]")

        page.select_option("#action-kind", "isolate")
        page.click("#action-form button[type=submit]")
        waiting = page.locator("#actions tr[data-state=proposed]")
        waiting.wait_for()
        assert "needs an admin" in waiting.text_content()
        assert waiting.locator("button[data-step=execute]").count() == 0
        waiting.locator("button[data-step=approve]").click()
        page.wait_for_selector("#action-message.error:has-text('admin role')")
        assert page.locator("#actions tr[data-state=proposed]").count() == 1

        page.goto(f"{base}/#/hosts/{incident['host_id']}")
        page.wait_for_selector("#actions tr[data-state=queued]")
        assert page.locator("#actions tbody tr").count() == 2
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#actions").screenshot(path=str(ARTIFACTS / "console-actions.png"))
        violations = page.evaluate("window.__violations")
        browser.close()
    assert violations == []
    assert errors == []
