"""Serving the web console: the single-page app at ``/``, its files under ``/console/``, and
the API reference at ``/docs`` (Swagger UI from ``static/vendor/swagger-ui``, never a CDN).

The files are package data (``static/``), read once when the console is mounted. Every
answer carries a strict Content-Security-Policy (everything from this origin only: no inline
script or style, no frames, no plugins) and ``nosniff``, so the console makes no request
anywhere but to the manager that served it. Only files of a known type are served; a name
that is not one of them is a 404, so no path reaches outside ``static/``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import FastAPI, Request, Response

CONSOLE_PREFIX = "/console"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
DOCS_SECURITY_HEADERS = SECURITY_HEADERS | {
    # Swagger UI's stylesheet draws its icons as data: images; scripts, styles and requests
    # stay limited to this origin as in the console.
    "Content-Security-Policy": f"{CONTENT_SECURITY_POLICY}; img-src 'self' data:"
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the console, ready to send."""

    body: bytes
    content_type: str
    etag: str


def static_root() -> Traversable:
    return resources.files("provarmor.manager.console").joinpath("static")


def load_assets(root: Traversable | None = None) -> dict[str, Asset]:
    """Every servable file under ``root`` (default: the packaged ``static/``), by its path
    relative to it with ``/`` separators (``app.js``, ``vendor/cytoscape.min.js``)."""
    assets: dict[str, Asset] = {}
    pending: list[tuple[str, Traversable]] = [("", root if root is not None else static_root())]
    while pending:
        prefix, folder = pending.pop()
        for entry in folder.iterdir():
            if entry.name.startswith((".", "__")):
                continue
            if entry.is_dir():
                pending.append((f"{prefix}{entry.name}/", entry))
                continue
            suffix = entry.name[entry.name.rfind(".") :] if "." in entry.name else ""
            content_type = CONTENT_TYPES.get(suffix.lower())
            if content_type is not None and entry.is_file():
                body = entry.read_bytes()
                digest = hashlib.sha256(body).hexdigest()[:20]
                assets[prefix + entry.name] = Asset(body, content_type, f'"{digest}"')
    return assets


def _answer(
    asset: Asset, request: Request, *, security: dict[str, str] = SECURITY_HEADERS
) -> Response:
    headers = security | {"ETag": asset.etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def mount_console(app: FastAPI) -> None:
    """Add the console's routes to ``app``: ``GET /`` (the app), ``GET /console/{file}`` and
    ``GET /docs`` (the API reference; ``app`` is made with FastAPI's own docs pages off, which
    load Swagger UI from a CDN with inline script)."""
    assets = load_assets()
    index = assets["index.html"]
    docs = assets["docs.html"]

    def console_index(request: Request) -> Response:
        return _answer(index, request)

    def api_docs(request: Request) -> Response:
        return _answer(docs, request, security=DOCS_SECURITY_HEADERS)

    def console_file(name: str, request: Request) -> Response:
        asset = assets.get(name)
        if asset is None:
            return Response(
                b"not found", status_code=404, media_type="text/plain", headers=SECURITY_HEADERS
            )
        return _answer(asset, request)

    app.add_api_route("/", console_index, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/docs", api_docs, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route(
        CONSOLE_PREFIX + "/{name:path}",
        console_file,
        methods=["GET", "HEAD"],
        include_in_schema=False,
    )
