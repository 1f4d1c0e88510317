"""The standalone agent's analysis with automatic response (``provarmor agent
--response-policy FILE``): this sink takes the place of the plain graph sink, runs the whole
analysis on the agent's own host (graph in the local store, Sigma rules, campaigns,
incidents) and hands every incident update to the :class:`Responder`, with the analysis's
lineage of every process (so process actions also reach the attack's living ancestors of
the signalling processes), which applies the policy (off, dry-run or enforce) and writes
the audit trail.

The spool position is stored with each batch's graph delta (same store and key as the
graph sink), so a restart resumes after the last analysed batch; the responder does not
ask again for actions already in its audit trail. An incident update the responder cannot
audit (its trail unwritable) gets no action; it is logged and counted
(``response.skipped.lost``), and the agent goes on. Alerts go to the agent's alert file
(ECS); which rule raised each alert, and the lineage context of its process when the
context did not lower it, are remembered (bounded; evictions counted) so policy rules can
match on rule ids and lineage.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import msgspec

from provarmor.agent.sinks import GraphSink, decode_position, encode_position
from provarmor.agent.spool import SpoolPosition
from provarmor.detection.context import ContextDetector
from provarmor.graph.lineage import LineageClassifier
from provarmor.model.event import Event
from provarmor.outputs.alert_formats import ecs_alert
from provarmor.pipeline.analysis import Finding, IncidentUpdate
from provarmor.pipeline.assembly import AnalysisPlan, build_analysis
from provarmor.response.responder import Responder
from provarmor.storage.sqlite_graph import SqliteGraphStore

MAX_REMEMBERED_ALERTS = 100_000
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResponseSetup:
    """What the agent needs to respond: the analysis to run and the responder."""

    plan: AnalysisPlan
    responder: Responder


class ResponseSink:
    name = GraphSink.name

    def __init__(self, path: Path, *, setup: ResponseSetup, alerts: Path) -> None:
        self.store = SqliteGraphStore(path)
        self.analysis = build_analysis(setup.plan, store=self.store)
        self.side: LineageClassifier | None = next(
            (d.classifier for d in self.analysis.detectors if isinstance(d, ContextDetector)),
            None,
        )
        """The analysis's lineage of every process (with the plan's lineage context): the
        responder reaches an incident's living attack ancestors through it."""
        self.responder = setup.responder
        self.alerts = alerts
        self.rule_of: OrderedDict[str, tuple[str, str]] = OrderedDict()
        """Alert id -> (its rule id, the lineage context it counts in; '' when none or
        when that context lowered it)."""
        self.forgotten_alerts = 0
        self.incident_updates = 0
        self.response_errors = 0
        """Incident updates not responded to because the audit trail could not be written."""

    def committed(self) -> SpoolPosition | None:
        text = self.store.meta(GraphSink.META_KEY)
        return None if text is None else decode_position(text, location=self.store.path)

    def write(self, events: list[Event], position: SpoolPosition) -> None:
        meta = {GraphSink.META_KEY: encode_position(position)}
        self._handle(self.analysis.feed(events, meta=meta))

    def _handle(self, findings: list[Finding]) -> None:
        alerts = [f for f in findings if not isinstance(f, IncidentUpdate)]
        if alerts:
            with self.alerts.open("ab") as handle:
                for alert in alerts:
                    handle.write(msgspec.json.encode(ecs_alert(alert)) + b"\n")
                    context = alert.context if alert.context_effect != "lowered" else ""
                    self._remember(alert.id, (alert.rule_id, context))
        for finding in findings:
            if isinstance(finding, IncidentUpdate):
                self.incident_updates += 1
                incident = finding.incident
                known = [self.rule_of[a] for a in incident.alert_ids if a in self.rule_of]
                rule_ids = {rule for rule, _ in known}
                contexts = {context for _, context in known if context}
                try:
                    self.responder.on_incident(
                        incident, rule_ids=rule_ids, contexts=contexts, side=self.side
                    )
                except OSError as exc:  # the audit trail cannot be written: no action runs
                    self.response_errors += 1
                    log.error("response to incident %s skipped: %s", incident.id, exc)

    def _remember(self, alert_id: str, signal: tuple[str, str]) -> None:
        self.rule_of[alert_id] = signal
        if len(self.rule_of) > MAX_REMEMBERED_ALERTS:
            self.rule_of.popitem(last=False)
            self.forgotten_alerts += 1

    def counters(self) -> dict[str, int]:
        counters = {f"response.{key}": value for key, value in self.responder.counters.items()}
        counters["response.incident_updates"] = self.incident_updates
        counters["response.alert_rules.forgotten"] = self.forgotten_alerts
        counters["response.skipped.lost"] = self.response_errors
        return counters

    def close(self) -> None:
        self._handle(self.analysis.finish())
        self.store.close()
