"""``provarmor response``: check a policy file, replay recorded events through the analysis
and a policy in dry-run, list the actions in the audit trail (as a table or as OCSF
Remediation events), and undo an action by its id."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from provarmor.cli.config_command import OPTIONS
from provarmor.cli.terminal import escape
from provarmor.model.errors import ConfigError
from provarmor.model.time_units import ns_to_seconds
from provarmor.response.settings import ResponseSettings

console = Console()
response_app = typer.Typer(help="Response actions: policy check, audit trail, undo.")
StateDir = Annotated[
    Path | None,
    typer.Option(help="The agent's state directory (response state in its response/)."),
]


def _settings(state_dir: Path | None) -> ResponseSettings:
    settings = OPTIONS.load().response
    if state_dir is not None:
        settings = dataclasses.replace(settings, state_dir=state_dir / "response")
    return settings


@response_app.command()
def check(policy: Annotated[Path, typer.Argument(help="A response policy (YAML).")]) -> None:
    """Parse a policy and say what it does (errors name file and line)."""
    from provarmor.response.policy import parse_policy

    try:
        text = policy.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the policy: {exc}", location=str(policy)) from None
    parsed = parse_policy(text, source=str(policy))
    limit = parsed.rate_limit
    console.print(
        f"mode {parsed.mode.value}; at most {limit.actions} actions per {limit.seconds:g} s "
        f"per host; {len(parsed.rules)} rule(s)"
    )
    for rule in parsed.rules:
        when = [f"severity >= {rule.severity}"]
        when += [f"technique in {', '.join(rule.techniques)}"] if rule.techniques else []
        when += [f"rule in {', '.join(rule.rule_ids)}"] if rule.rule_ids else []
        when += [f"a signal's lineage in {', '.join(rule.lineage)}"] if rule.lineage else []
        when += [f"host group in {', '.join(rule.host_groups)}"] if rule.host_groups else []
        actions = ", ".join(action.value for action in rule.actions)
        console.print(f"  {escape(rule.name)}: {escape(actions)} when {escape(' and '.join(when))}")


@response_app.command()
def replay(
    recordings: Annotated[
        list[Path], typer.Argument(help="Recorded canonical events (NDJSON, gzip or not).")
    ],
    out: Annotated[Path, typer.Option(help="A new folder: one audit trail per recording.")],
    policy: Annotated[
        Path | None, typer.Option(help="A response policy (default: the shipped one).")
    ] = None,
) -> None:
    """What a policy would have done on recorded events: the agent's analysis (bundled
    rules, configured analysis) runs over each recording and the policy is applied in
    dry-run (whatever its mode); nothing on this host is touched. Each recording's audit
    trail is ``OUT/<n>-<name>/response/actions.jsonl``."""
    from provarmor.agent.response_sink import ResponseSink
    from provarmor.agent.spool import SpoolPosition
    from provarmor.cli.agent_commands import response_setup
    from provarmor.pipeline.analysis import batches
    from provarmor.response.audit import Phase, read_audit
    from provarmor.response.policy import Mode, bundled_policy, read_policy
    from provarmor.response.records import describe_target
    from provarmor.sources.base import HostContext, IngestReport
    from provarmor.sources.ndjson import read_ndjson

    if out.exists():
        raise ConfigError("the output folder exists already (give a new one)", location=str(out))
    chosen = msgspec.structs.replace(read_policy(policy or bundled_policy()), mode=Mode.DRY_RUN)
    config = OPTIONS.load()
    for index, recording in enumerate(recordings, start=1):
        folder = out / f"{index}-{recording.parent.name or recording.stem}"
        folder.mkdir(parents=True)
        setup = response_setup(chosen, config, state_dir=folder)
        sink = ResponseSink(folder / "graph.db", setup=setup, alerts=folder / "alerts.jsonl")
        report = IngestReport(source=str(recording))
        sequence = 0
        for batch in batches(read_ndjson(recording, report=report, host=HostContext())):
            sequence += len(batch)
            sink.write(batch, SpoolPosition(sequence=sequence))
        sink.close()
        trail = setup.responder.audit.path
        records = read_audit(trail)[0] if trail.exists() else []
        results = [r for r in records if r.phase is Phase.RESULT]
        console.print(
            f"{escape(str(recording))}: {sequence:,} events, {report.rejected} rejected, "
            f"{sink.incident_updates} incident updates, {len(results)} action(s) asked for"
        )
        for record in results:
            request = record.request
            outcome = record.outcome.value if record.outcome else ""
            console.print(
                f"  {request.kind.value} {escape(describe_target(request.target))}: {outcome} "
                f"({escape(request.requested_by)}; {escape(request.reason)})",
                highlight=False,
            )


@response_app.command()
def actions(
    state_dir: StateDir = None,
    ocsf: Annotated[bool, typer.Option(help="OCSF Remediation events, one per line.")] = False,
) -> None:
    """The results in the audit trail (newest last); damaged lines are reported, not fatal."""
    from provarmor.response.audit import Phase, read_audit
    from provarmor.response.ocsf import remediation_event
    from provarmor.response.records import describe_target

    path = _settings(state_dir).audit_file
    if not path.exists():
        console.print(f"no actions yet ({escape(str(path))} does not exist)")
        return
    records, errors = read_audit(path)
    for error in errors:
        Console(stderr=True).print(f"skipped: {escape(str(error))}", highlight=False)
    results = [r for r in records if r.phase in (Phase.RESULT, Phase.UNDONE)]
    if ocsf:
        for record in results:
            sys.stdout.write(json.dumps(remediation_event(record)) + "\n")
        return
    table = Table(title=f"actions in {path}")
    for column in ("time (UTC)", "id", "action", "target", "mode", "outcome", "by", "message"):
        table.add_column(column)
    for record in results:
        request = record.request
        when = datetime.fromtimestamp(ns_to_seconds(record.time_ns), tz=UTC).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        outcome = record.outcome.value if record.outcome else ""
        action = request.kind.value + (f" (undoes {record.undoes})" if record.undoes else "")
        table.add_row(
            when,
            escape(request.id),
            escape(action),
            escape(describe_target(request.target)),
            escape(record.mode),
            outcome,
            escape(request.requested_by),
            escape(record.message),
        )
    console.print(table)


@response_app.command()
def undo(
    action_id: Annotated[str, typer.Argument(help="The id of a done action (see `actions`).")],
    state_dir: StateDir = None,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")] = "",
) -> None:
    """Undo an action: restore, resume, unblock, release, unlock or unrevert (root)."""
    from provarmor.response.action import build_context
    from provarmor.response.policy import Policy
    from provarmor.response.responder import Responder

    responder = Responder.open(Policy(), build_context(_settings(state_dir)))
    who = os.environ.get("SUDO_USER") or getpass.getuser()
    try:
        record = responder.undo_by_id(action_id, requested_by=who, reason=reason)
    except ValueError as exc:
        raise ConfigError(str(exc), location=action_id) from None
    outcome = record.outcome.value if record.outcome else ""
    console.print(f"{record.request.kind.value}: {outcome}: {escape(record.message)}")
    if outcome != "done":
        raise typer.Exit(1)


def register(app: typer.Typer, *, panel: str) -> None:
    app.add_typer(response_app, name="response", rich_help_panel=panel)
