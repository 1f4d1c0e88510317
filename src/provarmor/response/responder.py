"""The responder: applies a policy to incidents, runs (or in dry-run only records) the
actions, enforces the per-host rate limit, and undoes actions; everything goes through the
audit trail. It also keeps the baseline of persistence files that ``revert_file`` goes back
to (:meth:`Responder.keep_baseline`: the agent calls it at start, :meth:`Responder.tick`
refreshes it every ``baseline_refresh_seconds``).

An incident is seen many times (each update is a new version); an action is asked for once
per incident and target (its id is derived from both), also across restarts: the ids
already in the audit trail are not asked for again.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field

from provarmor.model.errors import StorageError
from provarmor.model.incident import Incident
from provarmor.response.action import Action, ResponseContext
from provarmor.response.audit import AuditRecord, AuditTrail, Phase, read_audit
from provarmor.response.baseline import (
    Baseline,
    Limits,
    expand,
    home_folders,
    observe,
    read_baseline,
    refresh,
    write_baseline,
)
from provarmor.response.isolate import release_due
from provarmor.response.planner import AttackSide, plan_requests
from provarmor.response.policy import Mode, Policy
from provarmor.response.processes import find_target
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    ActionResult,
    HostTarget,
    Outcome,
    ProcessTarget,
    describe_target,
)
from provarmor.response.registry import ACTIONS, BY_KIND

ORDER = {action.kind: index for index, action in enumerate(ACTIONS)}
log = logging.getLogger(__name__)


@dataclass(slots=True)
class Responder:
    policy: Policy
    context: ResponseContext
    audit: AuditTrail
    asked: set[str] = field(default_factory=set)
    counters: collections.Counter[str] = field(default_factory=collections.Counter)
    _recent: dict[str, collections.deque[float]] = field(default_factory=dict)
    _scoped: set[str] = field(default_factory=set)
    """Incidents seen with a live process inside the ``process_scope``."""
    _baseline_at: float | None = None
    """When the baseline was last refreshed (monotonic; ``None``: it is not kept)."""

    @classmethod
    def open(cls, policy: Policy, context: ResponseContext) -> Responder:
        """A responder whose audit trail is ``<state_dir>/actions.jsonl`` (ids already in it
        are not asked for again)."""
        audit = AuditTrail(context.settings.audit_file)
        responder = cls(policy=policy, context=context, audit=audit)
        if audit.path.exists():
            records, errors = read_audit(audit.path)
            responder.asked = {r.request.id for r in records if r.phase is Phase.PROPOSED}
            responder.counters["audit.unreadable_lines"] = len(errors)
        return responder

    def on_incident(
        self,
        incident: Incident,
        *,
        rule_ids: set[str],
        contexts: Collection[str] = (),
        side: AttackSide | None = None,
    ) -> list[AuditRecord]:
        """Apply the policy to one incident version; returns the result records.
        ``rule_ids``: the rules its signals came from; ``contexts``: the lineage contexts of
        the processes its signals were raised on (those the context did not lower);
        ``side``: the lineage of the incident's processes, when the caller runs the
        analysis."""
        policy = self.policy
        if policy.mode is Mode.OFF:
            return []
        if self._outside_scope(incident):
            self.counters["out_of_scope"] += 1
            return []
        groups = policy.groups_of(incident.host_id, self.context.host.id, self.context.host.name)
        techniques = {ref.id for ref in incident.techniques}
        results: list[AuditRecord] = []
        for rule in policy.rules:
            if not rule.matches(
                severity=incident.severity,
                techniques=techniques,
                rule_ids=rule_ids,
                groups=groups,
                contexts=contexts,
            ):
                continue
            kinds = tuple(sorted(rule.actions, key=ORDER.__getitem__))
            persistence = self.context.settings.persistence_files
            planned = plan_requests(incident, rule, kinds=kinds, side=side, persistence=persistence)
            for request in planned:
                if request.id in self.asked:
                    continue
                self.asked.add(request.id)
                results.append(self.run(request, mode=policy.mode))
        return results

    def _outside_scope(self, incident: Incident) -> bool:
        """With a ``process_scope``: the incident is not the scope's (none of its actions is
        asked for) when one of its signalling processes is alive outside it, or when none of
        its processes was ever seen alive inside it (its processes are gone: whose they
        were is unknown, and a file or address it names may be anyone's). Once seen inside,
        an incident stays the scope's (its processes may be gone because they were
        killed)."""
        scope = self.context.settings.process_scope
        if not scope:
            return False
        inside = incident.id in self._scoped
        for node in incident.nodes:
            if node.kind != "process" or node.pid <= 0:
                continue
            info = find_target(ProcessTarget(entity_id=node.id, pid=node.pid), self.context)
            if info is None:
                continue
            if info.cgroup.startswith(scope):
                inside = True
            elif node.alert_ids:
                return True
        if inside:
            self._scoped.add(incident.id)
        return not inside

    def _rate_limited(self, host: str) -> str | None:
        """Why the host's rate limit refuses one more execution (``None``: it is counted; an
        execution the action itself refuses, having touched nothing, is given back)."""
        limit = self.policy.rate_limit
        now = time.monotonic()
        recent = self._recent.setdefault(host, collections.deque())
        while recent and recent[0] <= now - limit.seconds:
            recent.popleft()
        if len(recent) >= limit.actions:
            return f"rate limit: {limit.actions} actions in {limit.seconds:g} s on this host"
        recent.append(now)
        return None

    def run(self, request: ActionRequest, *, mode: Mode = Mode.ENFORCE) -> AuditRecord:
        """Propose, then (enforce) execute or (dry-run) record; always audited."""
        self.audit.proposed(request, mode=mode.value)
        self.counters["proposed"] += 1
        action = BY_KIND[request.kind]
        fits = isinstance(request.target, action.target_type)
        limited = self._rate_limited(request.host_id or self.context.host.id) if fits else None
        if not fits:
            result = ActionResult(
                outcome=Outcome.REFUSED,
                message=f"{request.kind.value} takes a {action.target_type.__name__}",
            )
        elif limited is not None:
            result = ActionResult(outcome=Outcome.REFUSED, message=limited)
            self.counters["rate_limited"] += 1
        elif mode is Mode.DRY_RUN:
            result = ActionResult(
                outcome=Outcome.DRY_RUN,
                message=f"would {request.kind.value} {describe_target(request.target)}",
            )
        else:
            self.audit.executing(request, mode=mode.value)
            result = self._execute(action, request)
            if result.outcome is Outcome.REFUSED:  # it touched nothing (a process gone ...)
                self._recent[request.host_id or self.context.host.id].pop()
        self.counters[result.outcome.value] += 1
        return self.audit.result(request, result, mode=mode.value)

    def _execute(self, action: Action, request: ActionRequest) -> ActionResult:
        """Run an action; a failure of the host (no space, no permission) is its result."""
        try:
            return action.run(request, self.context)
        except OSError as exc:
            return ActionResult(outcome=Outcome.FAILED, message=f"{request.kind.value}: {exc}")

    def undo(self, record: AuditRecord, *, requested_by: str, reason: str = "") -> AuditRecord:
        """Undo a done action (``restore``, ``resume``, ``unblock``, ``release``,
        ``unlock_user``, ``unrevert_file``); the undo is audited with ``undoes`` = the
        action's id."""
        request = record.request
        undo_kind = BY_KIND[request.kind].undo
        if record.outcome is not Outcome.DONE or undo_kind is None:
            raise ValueError(f"{request.id} ({request.kind.value}) cannot be undone")
        undo = ActionRequest(
            id=f"{request.id}-undo",
            kind=undo_kind,
            target=record.undo_target or request.target,
            requested_by=requested_by,
            reason=reason or f"undo {request.id}",
            incident_id=request.incident_id,
            host_id=request.host_id,
            explicit=True,
        )
        self.audit.proposed(undo, mode=Mode.ENFORCE.value)
        self.audit.executing(undo, mode=Mode.ENFORCE.value)
        result = self._execute(BY_KIND[undo_kind], undo)
        self.counters[f"undo.{result.outcome.value}"] += 1
        return self.audit.result(undo, result, mode=Mode.ENFORCE.value, undoes=request.id)

    def undo_by_id(self, action_id: str, *, requested_by: str, reason: str = "") -> AuditRecord:
        """Undo the action ``action_id`` as recorded in the audit trail (``ValueError`` when
        it is not there, did not succeed, cannot be undone or was undone already)."""
        records, _ = read_audit(self.audit.path) if self.audit.path.exists() else ([], [])
        done = [
            r
            for r in records
            if r.phase is Phase.RESULT and r.request.id == action_id and r.outcome is Outcome.DONE
        ]
        if not done:
            raise ValueError(f"no successful action {action_id!r} in {self.audit.path}")
        if any(
            r.phase is Phase.UNDONE and r.undoes == action_id and r.outcome is Outcome.DONE
            for r in records
        ):
            raise ValueError(f"{action_id} was undone already")
        return self.undo(done[-1], requested_by=requested_by, reason=reason)

    def keep_baseline(self) -> None:
        """Take (or refresh) the baseline of the persistence files; with policy mode off,
        nothing (nothing will be reverted). A damaged stored baseline is replaced, and
        counted (``baseline.damaged``); a host failure (no space) is logged and counted
        (``baseline.errors``), and the stored one stays."""
        if self.policy.mode is Mode.OFF:
            return
        settings = self.context.settings
        self._baseline_at = time.monotonic()
        try:
            try:
                stored = read_baseline(settings.baseline_file)
            except StorageError as exc:
                log.error("baseline replaced: %s", exc)
                self.counters["baseline.damaged"] += 1
                stored = Baseline()
            patterns = expand(settings.persistence_files, home_folders())
            now = time.time_ns()
            observed = observe(patterns, now_ns=now, file_bytes=settings.baseline_file_bytes)
            limits = Limits(
                versions=settings.baseline_versions,
                total_bytes=settings.baseline_total_bytes,
            )
            fresh, counts = refresh(stored, observed, patterns, now_ns=now, limits=limits)
            if fresh != stored:
                write_baseline(settings.baseline_file, fresh)
        except OSError as exc:
            log.error("baseline of persistence files not refreshed: %s", exc)
            self.counters["baseline.errors"] += 1
            return
        self.counters.update(counts)

    def tick(self) -> AuditRecord | None:
        """Refresh the baseline when it is due; release an isolation whose automatic
        release time has come."""
        every = self.context.settings.baseline_refresh_seconds
        since = None if self._baseline_at is None else time.monotonic() - self._baseline_at
        if since is not None and every > 0 and since >= every:
            self.keep_baseline()
        if not release_due(self.context):
            return None
        request = ActionRequest(
            id=f"release-{time.time_ns()}",
            kind=ActionKind.RELEASE,
            target=HostTarget(),
            requested_by="schedule",
            reason="automatic release time of the isolation reached",
            host_id=self.context.host.id,
        )
        return self.run(request, mode=Mode.ENFORCE)
