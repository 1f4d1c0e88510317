"""Build alerts and correlation hits from matched events: what each match is about.

An event names the acting process (and, for ptrace/kill/fork, the target process), the
files it touched and the remote endpoint it talked to; alerts list them so the story
builder can find them in the provenance graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from provarmor.detection.sigma.compiler import RuleInfo
from provarmor.detection.sigma.correlation import Firing, Hit, firing_hit
from provarmor.detection.sigma.fields import EVENT_FIELDS
from provarmor.detection.sigma.records import Record
from provarmor.model.alert import Alert
from provarmor.model.event import Endpoint, Event


def _endpoint(endpoint: Endpoint) -> str:
    if endpoint.ip:
        host = f"[{endpoint.ip}]" if ":" in endpoint.ip else endpoint.ip
        return f"{host}:{endpoint.port}" if endpoint.port else host
    return endpoint.domain or endpoint.address


def event_entities(event: Event) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(process entity ids, file paths, remote endpoints) named by one event."""
    processes = [event.process.entity_id] if event.process.entity_id else []
    target = event.target.process if event.target is not None else None
    if target is not None and target.entity_id:
        processes.append(target.entity_id)
    files: list[str] = []
    if event.file is not None:
        files = [path for path in (event.file.path, event.file.original_path) if path]
    remotes: list[str] = []
    if event.destination is not None:
        remote = _endpoint(event.destination)
        if remote:
            remotes.append(remote)
        if event.destination.domain and event.destination.domain != remote:
            remotes.append(event.destination.domain)
    return tuple(processes), tuple(files), tuple(remotes)


def alert_for_event(info: RuleInfo, event: Event) -> Alert:
    processes, files, remotes = event_entities(event)
    return Alert(
        id=f"{info.key}@{event.event.id}",
        rule_id=info.key,
        rule_title=info.title,
        level=info.level,
        description=info.description,
        techniques=info.techniques,
        tactics=info.tactics,
        host_id=event.host.id,
        event_ids=(event.event.id,),
        process_entity_ids=processes,
        file_paths=files,
        remote_endpoints=remotes,
        first_timestamp=event.timestamp,
        last_timestamp=event.timestamp,
        count=1,
    )


def event_hit(rule_key: str, event: Event, *, record: Record) -> Hit:
    """A rule's match on ``event`` as a correlation hit; field values come from the matched
    record, else from the event through the field mapping."""
    processes, files, remotes = event_entities(event)
    return Hit(
        rule_key=rule_key,
        timestamp=event.timestamp,
        first_timestamp=event.timestamp,
        host_id=event.host.id,
        event_ids=(event.event.id,),
        process_entity_ids=processes,
        file_paths=files,
        remote_endpoints=remotes,
        value=EventValues(record.values, event),
    )


@dataclass(frozen=True, slots=True)
class EventValues:
    """A rule match's field values: the matched record's, else the event's through the field
    mapping (an object, not a closure: hits in open correlation windows are checkpointed)."""

    record: Mapping[str, str | None]
    event: Event

    def __call__(self, name: str) -> str | None:
        key = name.lower()
        found = self.record.get(key)
        if found is None and key in EVENT_FIELDS:
            found = EVENT_FIELDS[key](self.event)
        return found


def alert_for_firing(info: RuleInfo, firing: Firing) -> Alert:
    hit = firing_hit(firing)
    last_event = hit.event_ids[-1] if hit.event_ids else str(hit.timestamp)
    return Alert(
        id=f"{info.key}@{last_event}",
        rule_id=info.key,
        rule_title=info.title,
        level=info.level,
        description=info.description,
        techniques=info.techniques,
        tactics=info.tactics,
        host_id=hit.host_id,
        event_ids=hit.event_ids,
        process_entity_ids=hit.process_entity_ids,
        file_paths=hit.file_paths,
        remote_endpoints=hit.remote_endpoints,
        first_timestamp=hit.first_timestamp,
        last_timestamp=hit.timestamp,
        count=hit.count,
    )
