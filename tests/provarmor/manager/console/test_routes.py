"""The console's files as the manager serves them: content types, the Content-Security-Policy,
404 for anything else, revalidation, no external address anywhere, vendored licences, and
JavaScript that never parses data as HTML."""

import re
import warnings
from pathlib import Path

import pytest
from fastapi import FastAPI

from provarmor.manager.app import create_app
from provarmor.manager.console import mount_console
from provarmor.manager.console.routes import CONTENT_TYPES, load_assets
from provarmor.manager.database import open_findings_store
from provarmor.manager.settings import ManagerSettings

with warnings.catch_warnings():
    # starlette asks for httpx2 instead of httpx; the test client works the same either way
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

STATIC = Path(__file__).parents[4] / "src" / "provarmor" / "manager" / "console" / "static"
ASSETS = load_assets()
EXTERNAL = re.compile(r"(?:https?|wss?|ftp):/|//cdn|fonts\.googleapis", re.IGNORECASE)
# A block comment that holds a licence notice (vendored files keep theirs, with URLs).
LICENCE_COMMENT = re.compile(
    r"/\*(?:(?!\*/).)*?(?:licen[cs]e|copyright)(?:(?!\*/).)*\*/", re.S | re.I
)
HTML_SINKS = re.compile(
    r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\("
)


@pytest.fixture(scope="module")
def client():
    app = FastAPI()
    mount_console(app)
    with TestClient(app) as test_client:
        yield test_client


def test_the_packaged_files_are_all_found():
    on_disk = {
        path.relative_to(STATIC).as_posix()
        for path in STATIC.rglob("*")
        if path.is_file() and path.suffix in CONTENT_TYPES
    }
    assert set(ASSETS) == on_disk
    assert {"index.html", "app.js", "app.css", "vendor/cytoscape.min.js"} <= set(ASSETS)


def test_index_is_served_at_the_root_with_a_strict_policy(client):
    answer = client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    policy = answer.headers["content-security-policy"]
    assert policy.startswith("default-src 'self';")
    assert "frame-ancestors 'none'" in policy
    assert "unsafe" not in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.content == (STATIC / "index.html").read_bytes()


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_each_file_is_served_with_its_content_type(client, name):
    answer = client.get(f"/console/{name}")
    assert answer.status_code == 200
    assert answer.content == (STATIC / name).read_bytes()
    assert answer.headers["content-type"] == CONTENT_TYPES[Path(name).suffix]
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_javascript_is_served_as_javascript(client):
    for name in ("app.js", "js/graph.js", "vendor/cytoscape.min.js"):
        assert client.get(f"/console/{name}").headers["content-type"].startswith("text/javascript")
    assert client.get("/console/app.css").headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/console/nothing.js",
        "/console/../routes.py",
        "/console/%2e%2e/routes.py",
        "/console/..%2f__init__.py",
        "/console/vendor",
        "/console/vendor/",
        "/console/",
        "/console/APP.JS",
    ],
)
def test_anything_else_is_404(client, path):
    assert client.get(path).status_code == 404


def test_a_missing_file_is_answered_under_the_same_policy(client):
    answer = client.get("/console/missing.js")
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    assert answer.headers["content-type"].startswith("text/plain")


def test_unchanged_files_are_revalidated_with_304(client):
    first = client.get("/console/app.js")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = client.get("/console/app.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    stale = client.get("/console/app.js", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200


# Licence texts may name their authors' sites; nothing loads them. Swagger UI's bundle holds
# spec and namespace URIs as strings: the browser test of /docs shows it requests nothing
# outside the manager.
@pytest.mark.parametrize(
    "name",
    sorted(
        name
        for name in ASSETS
        if not name.endswith("LICENSE.txt") and not name.startswith("vendor/swagger-ui/")
    ),
)
def test_no_served_file_names_an_external_address(name):
    text = ASSETS[name].body.decode("utf-8", errors="replace")
    outside_licences = LICENCE_COMMENT.sub("", text)
    found = EXTERNAL.findall(outside_licences)
    assert not found, f"{name} names an external address: {found[:3]}"


def test_the_page_loads_only_its_own_files():
    html = ASSETS["index.html"].body.decode()
    references = re.findall(r'\b(?:src|href)="([^#"][^"]*)"', html)
    assert len(references) == 5
    for reference in references:
        assert reference.startswith("/console/"), reference
        assert reference.removeprefix("/console/") in ASSETS
    assert "<style" not in html
    assert " style=" not in html
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, "no inline script"


def test_api_docs_load_only_the_vendored_swagger_ui():
    html = ASSETS["docs.html"].body.decode()
    references = re.findall(r'\b(?:src|href)="([^#"][^"]*)"', html)
    assert sorted(references) == [
        "/console/favicon.png",
        "/console/js/docs.js",
        "/console/vendor/swagger-ui/swagger-ui-bundle.js",
        "/console/vendor/swagger-ui/swagger-ui.css",
    ]
    assert all(reference.removeprefix("/console/") in ASSETS for reference in references)
    assert "<style" not in html
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, "no inline script"
    assert "validatorUrl: null" in ASSETS["js/docs.js"].body.decode()


def test_api_docs_are_served_with_the_policy_and_fastapis_cdn_pages_are_gone(tmp_path):
    settings = ManagerSettings(state_dir=tmp_path)
    store = open_findings_store(settings.effective_database_url())
    with TestClient(create_app(settings, store)) as test_client:
        docs = test_client.get("/docs")
        assert docs.status_code == 200
        assert docs.content == ASSETS["docs.html"].body
        policy = docs.headers["content-security-policy"]
        assert policy.startswith("default-src 'self';")
        assert policy.endswith("; img-src 'self' data:")
        assert "unsafe" not in policy
        assert test_client.get("/redoc").status_code == 404
        assert test_client.get("/openapi.json").status_code == 200
    store.close()


def test_every_javascript_import_is_a_served_file():
    for name, asset in ASSETS.items():
        if not name.endswith(".js") or name.startswith("vendor/"):
            continue
        for target in re.findall(r'from "(\.[^"]+)"', asset.body.decode()):
            resolved = (Path("/") / name).parent.joinpath(target).resolve().as_posix().lstrip("/")
            assert resolved in ASSETS, f"{name} imports {target}, which is not served"


def test_our_javascript_never_parses_data_as_html():
    for name, asset in ASSETS.items():
        if name.endswith(".js") and not name.startswith("vendor/"):
            assert HTML_SINKS.search(asset.body.decode()) is None, name


def test_vendored_libraries_keep_their_licences():
    vendored = [name for name in ASSETS if name.startswith("vendor/") and name.endswith(".js")]
    assert sorted(vendored) == [
        "vendor/cytoscape-dagre.min.js",
        "vendor/cytoscape.min.js",
        "vendor/swagger-ui/swagger-ui-bundle.js",
    ]
    swagger = ASSETS["vendor/swagger-ui/swagger-ui.LICENSE.txt"].body.decode()
    assert "Apache License" in swagger
    assert "vendor/swagger-ui/swagger-ui-bundle.js.LICENSE.txt" in ASSETS
    for name in vendored[:2]:
        licence = ASSETS[name.removesuffix(".min.js") + ".LICENSE.txt"].body.decode()
        assert "Permission is hereby granted, free of charge" in licence
    assert 'cf.version="3.35.0"' in ASSETS["vendor/cytoscape.min.js"].body.decode()


def test_the_console_mounts_beside_the_api(tmp_path):
    settings = ManagerSettings(state_dir=tmp_path)
    store = open_findings_store(settings.effective_database_url())
    app = create_app(settings, store)
    mount_console(app)
    with TestClient(app) as test_client:
        assert test_client.get("/").status_code == 200
        assert test_client.get("/console/app.js").status_code == 200
        assert test_client.get("/api/v1/hosts").status_code == 401
        assert test_client.get("/healthz").status_code == 200
        paths = test_client.get("/openapi.json").json()["paths"]
        assert "/" not in paths
        assert not any(path.startswith("/console") for path in paths)
    store.close()
