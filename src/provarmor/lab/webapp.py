"""The lab's vulnerable web application: a network tool page with a command-injection bug.

``python3 -I webapp.py --port P --user U --directory D --log L --spawn-log S [--bind A]``
(standard library only: the lab runs this file with the system's interpreter, as installed
software runs) binds A:P (default 127.0.0.1; the lab binds every address of the victim's
namespace: its loopback and its lab address) as root, opens its logs, then drops to user
``U`` for good. It offers:

* ``/`` a page with a "ping a host" form, ``POST /ping`` (``host=...``): THE BUG. The host is
  checked only for starting like a local address, then pasted into ``ping -c 1 -W 1 HOST``
  run by ``/bin/sh``, so ``127.0.0.1; id`` runs ``id`` as the web user;
* ``/notes`` (GET lists, POST ``text=...`` adds): a small SQLite-backed notes store, the
  ordinary work that benign client load exercises.

Each request is written to an access log (combined format), and for every shell it starts
the application appends ``client-port pid start-ns`` to the spawn log: the lab's out-of-band
record of which process served which connection. The spawn log is opened before the
privilege drop in a root-only directory; the web user can append to it but not read it
back by path.
"""

from __future__ import annotations

import argparse
import html
import os
import pwd
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO
from urllib.parse import parse_qs

_LOCAL_PREFIX = re.compile(r"^(127\.|localhost|10\.213\.)")
"""The flawed check: it anchors only the start of the input."""

_PAGE = """<html><head><title>netcheck</title></head><body>
<h1>Network check</h1>
<form method="post" action="/ping"><input name="host" value="127.0.0.1">
<button>Ping</button></form><p><a href="/notes">notes</a></p>{body}</body></html>"""


def is_allowed_target(host: str) -> bool:
    """The application's own check (deliberately weak: prefix only)."""
    return bool(_LOCAL_PREFIX.match(host))


class App:
    """The state the handler needs: database, logs, command timeout."""

    def __init__(self, *, database: str, access: IO[str], spawns: IO[str]) -> None:
        self.database = database
        self.access = access
        self.spawns = spawns
        self.lock = threading.Lock()

    def ping(self, host: str, client_port: int) -> str:
        command = f"ping -c 1 -W 1 {host}"
        started = time.time_ns()
        child = subprocess.Popen(  # noqa: S602  (the deliberate vulnerability)
            command,
            shell=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        with self.lock:
            self.spawns.write(f"{client_port} {child.pid} {started}\n")
            self.spawns.flush()
        try:
            output, _ = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            return "timed out"
        return output.decode("utf-8", "replace")

    def notes(self, text: str | None) -> list[str]:
        with self.lock, sqlite3.connect(self.database) as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS notes (at REAL, text TEXT)")
            if text is not None:
                connection.execute("INSERT INTO notes VALUES (?, ?)", (time.time(), text))
            rows = connection.execute("SELECT text FROM notes ORDER BY at DESC LIMIT 20")
            return [row[0] for row in rows]

    def log(self, line: str) -> None:
        with self.lock:
            self.access.write(line + "\n")
            self.access.flush()


def _handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "Apache/2.4.57"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:
            return

        def _reply(self, status: int, body: str) -> None:
            data = _PAGE.format(body=body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
            agent = self.headers.get("User-Agent", "-")
            app.log(
                f'{self.client_address[0]} - - [{stamp}] "{self.requestline}" {status} '
                f'{len(data)} "-" "{agent}"'
            )

        def _form(self) -> dict[str, list[str]]:
            length = int(self.headers.get("Content-Length") or 0)
            return parse_qs(self.rfile.read(min(length, 65536)).decode("utf-8", "replace"))

        def do_GET(self) -> None:
            if self.path.startswith("/notes"):
                rows = "".join(f"<li>{html.escape(row)}</li>" for row in app.notes(None))
                self._reply(200, f"<ul>{rows}</ul>")
            elif self.path == "/":
                self._reply(200, "")
            else:
                self._reply(404, "not found")

        def do_POST(self) -> None:
            form = self._form()
            if self.path.startswith("/ping"):
                host = (form.get("host") or [""])[0]
                if not is_allowed_target(host):
                    self._reply(400, "only local hosts may be checked")
                    return
                output = app.ping(host, self.client_address[1])
                self._reply(200, f"<pre>{html.escape(output)}</pre>")
            elif self.path.startswith("/notes"):
                rows = app.notes((form.get("text") or [""])[0])
                self._reply(200, f"<p>{len(rows)} notes</p>")
            else:
                self._reply(404, "not found")

    return Handler


def _drop_privileges(user: str) -> None:
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ.update({"HOME": entry.pw_dir, "USER": user, "LOGNAME": user})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="provarmor.lab.webapp")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--spawn-log", required=True)
    parser.add_argument("--bind", default="127.0.0.1")
    arguments = parser.parse_args(argv)
    access = open(arguments.log, "a")  # noqa: SIM115  (kept open for the process lifetime)
    spawns = open(arguments.spawn_log, "a")  # noqa: SIM115
    app = App(database=f"{arguments.directory}/app.db", access=access, spawns=spawns)
    server = ThreadingHTTPServer((arguments.bind, arguments.port), _handler(app))
    server.daemon_threads = True
    _drop_privileges(arguments.user)
    os.chdir(arguments.directory)
    server.serve_forever()


if __name__ == "__main__":
    main()
