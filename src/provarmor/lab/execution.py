"""Carrying out one scenario action over its channel, and what the lab learns doing so.

* ``webshell``: a real HTTP request from the C2 server's namespace (the attacker's machine)
  to the vulnerable application on the victim's lab address, the command pasted after a
  local address; the attacker root is the shell the application started for that
  connection, found in the application's spawn log by the request's client port;
* ``implant`` / ``shell``: the command is queued on the C2 server and the lab waits for the
  implant's (or reverse shell's) answer;
* ``launch``: the lab starts the command itself as the attacker; that process is a root;
* ``remote``: the lab runs the command in the C2 server's namespace, the attacker's own
  machine, as lab machinery (see ``LabEnvironment.run``); not a root here: the sessions it
  opens on host2 are the attacker's (``lateral_to``);
* ``victim``: the lab runs a lab user's ordinary command (which sets off a planted trap).
"""

from __future__ import annotations

import http.client
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from provarmor.evaluation.groundtruth import RootProcess
from provarmor.lab.environment import LabEnvironment
from provarmor.lab.netns import entered
from provarmor.lab.scenario import Action, Channel
from provarmor.lab.services import SHELL_AGENT

SEPARATORS = ("; ", " && ", "\n", " | ")
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "curl/7.88.1",
    "python-requests/2.31.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    started_ns: int
    ended_ns: int
    ok: bool
    output: str
    roots: tuple[RootProcess, ...] = ()
    client_port: int = 0


REMOTE_ROLE = "c2"
"""The lab role whose namespace stands for the attacker's machine (``remote`` actions)."""


class Operator:
    """The attacker's hands for one run: numbers tasks, remembers what it sent."""

    def __init__(self, env: LabEnvironment) -> None:
        self.env = env
        self._task = 0

    def perform(self, action: Action) -> Outcome:
        if action.channel is Channel.WEBSHELL:
            return self._webshell(action)
        if action.channel in (Channel.LAUNCH, Channel.VICTIM, Channel.REMOTE):
            return self._launch(action)
        agent = action.agent or self.env.ctx.c2.agent
        if action.channel is Channel.SHELL:
            agent = SHELL_AGENT
        return self._task_for(agent, action)

    def _webshell(self, action: Action) -> Outcome:
        names = self.env.ctx.names
        body = urlencode({"host": f"127.0.0.1{names.pick(SEPARATORS)}{action.command}"})
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": names.pick(USER_AGENTS),
        }
        started = time.time_ns()
        victim = self.env.ctx.network.victim.address
        with entered(self.env.ctx.network.namespace(REMOTE_ROLE)):  # the attacker's machine
            sock = socket.create_connection((victim, self.env.ctx.web.port), timeout=10)
        client_port = sock.getsockname()[1]
        connection = http.client.HTTPConnection(victim, self.env.ctx.web.port)
        connection.sock = sock
        sock.settimeout(action.timeout + 15)
        try:
            connection.request("POST", "/ping", body=body, headers=headers)
            reply = connection.getresponse()
            text, ok = reply.read().decode("utf-8", "replace"), reply.status == 200
        except OSError as error:
            text, ok = repr(error), False
        finally:
            connection.close()
        roots = tuple(
            RootProcess(
                pid=pid, start_ns=start, step=action.step, via="webshell", executable="/bin/sh"
            )
            for pid, start in spawned_for(self.env.spawn_log, client_port, since=started)
        )
        return Outcome(
            started_ns=started,
            ended_ns=time.time_ns(),
            ok=ok and bool(roots),
            output=text,
            roots=roots,
            client_port=client_port,
        )

    def _launch(self, action: Action) -> Outcome:
        remote = REMOTE_ROLE if action.channel is Channel.REMOTE else ""
        done = self.env.run(action.command, user=action.user, timeout=action.timeout, remote=remote)
        roots: tuple[RootProcess, ...] = ()
        if action.channel is Channel.LAUNCH:
            roots = (
                RootProcess(
                    pid=done.pid,
                    start_ns=done.started_ns,
                    step=action.step,
                    via="launch",
                    executable="/bin/sh",
                ),
            )
        return Outcome(
            started_ns=done.started_ns,
            ended_ns=done.ended_ns,
            ok=done.returncode == 0,
            output=done.output.decode("utf-8", "replace"),
            roots=roots,
        )

    def _task_for(self, agent: str, action: Action) -> Outcome:
        self._task += 1
        task_id = f"{self._task:04d}"
        started = time.time_ns()
        self.env.queue.put(agent, self._task, action.command)
        deadline = time.monotonic() + action.timeout
        while time.monotonic() < deadline:
            answer = self.env.queue.result(task_id)
            if answer is not None:
                status, _, output = answer.partition(b"\n")
                text = output.decode("utf-8", "replace")
                ok = status.strip() == b"0"
                return Outcome(started_ns=started, ended_ns=time.time_ns(), ok=ok, output=text)
            time.sleep(0.05)
        return Outcome(started_ns=started, ended_ns=time.time_ns(), ok=False, output="timeout")


def spawned_for(spawn_log: Path, client_port: int, *, since: int) -> list[tuple[int, int]]:
    """(pid, start ns) of the shells the web application started for ``client_port`` at or
    after ``since`` (ports are reused, so earlier lines may name another connection)."""
    try:
        lines = spawn_log.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) == 3 and fields[0] == str(client_port) and int(fields[2]) >= since:
            found.append((int(fields[1]), int(fields[2])))
    return found
