"""Agent routes: enrolment, batch upload (idempotent by sequence number) and status."""

from __future__ import annotations

import json
import time
import zlib
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from provarmor.manager.auth import Principal, Role, issue_token, secret_matches, split_token
from provarmor.manager.command_queue import sweep
from provarmor.manager.deps import ApiError, ManagerContext, get_context, require_agent
from provarmor.manager.ingest import BatchTooLarge, UploadResult
from provarmor.manager.routes.params import parse_int64
from provarmor.manager.store import AgentRecord, TokenRecord
from provarmor.model.errors import ParseError

router = APIRouter(tags=["agents"])

Context = Annotated[ManagerContext, Depends(get_context)]
Agent = Annotated[Principal, Depends(require_agent)]


class EnrollRequest(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    host_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")
    hostname: str = Field(default="", max_length=255)


ENROLMENT_VERSION = 2
"""1: ``agent_id`` and ``credential``; 2: also ``version`` and ``bus`` (cluster mode)."""


class BusAccessAnswer(BaseModel):
    url: str
    """The JetStream bus the agent publishes its batches to."""
    jwt: str
    seed: str
    """The agent's own bus user (NATS JWT and nkey seed): it may publish its host's events
    and read its own commands only."""
    inbox: str
    """The prefix of its reply subjects (the only inbox its permissions allow)."""


class Enrolment(BaseModel):
    version: int = ENROLMENT_VERSION
    agent_id: str
    credential: str
    """Shown once: the agent's Bearer token for every later call."""
    bus: BusAccessAnswer | None = None
    """Cluster mode: where to publish batches and as whom; none: upload them over HTTP."""


class BatchAck(BaseModel):
    acked_sequence: int
    duplicate: bool
    events: int = 0
    alerts: int = 0
    incidents: int = 0


class AckedSequence(BaseModel):
    acked_sequence: int


class StatusReport(BaseModel):
    sensor: str = Field(default="", max_length=100)
    healthy: bool = True
    blind_reason: str = Field(default="", max_length=1000)
    counters: dict[str, int] = Field(default_factory=dict, max_length=500)
    drops: dict[str, int] = Field(default_factory=dict, max_length=100)


@router.post("/enroll", status_code=201)
def enroll(body: EnrollRequest, context: Context) -> Enrolment:
    """Trade a one-time enrolment token for an agent credential (no Bearer token needed)."""
    refused = ApiError(401, "invalid, used or expired enrolment token", field="token")
    parts = split_token(body.token)
    if parts is None:
        raise refused
    store = context.store
    record = store.token(parts[0])
    if (
        record is None
        or record.role is not Role.ENROLL
        or not secret_matches(parts[1], salt=record.salt, digest=record.digest)
    ):
        raise refused
    now = time.time_ns()
    if not store.consume_enrollment(record.id, now_ns=now):
        raise refused
    issued = issue_token()
    signer = context.settings.bus_signer()
    store.add_agent(
        AgentRecord(id=issued.id, host_id=body.host_id, hostname=body.hostname, enrolled_ns=now),
        credential=TokenRecord(
            id=issued.id,
            role=Role.AGENT,
            salt=issued.salt,
            digest=issued.digest,
            created_ns=now,
            label=f"agent of {body.host_id}",
        ),
    )
    if context.bus_commands is not None:
        context.bus_commands.prepare(issued.id)
    bus = None
    if signer is not None:
        access = signer.issue_agent(issued.id, body.host_id)
        bus = BusAccessAnswer(
            url=context.settings.bus_url, jwt=access.jwt, seed=access.seed, inbox=access.inbox
        )
    return Enrolment(agent_id=issued.id, credential=issued.text, bus=bus)


async def _read_body(request: Request, *, limit: int) -> bytes:
    """The batch, decompressed to at most ``limit`` bytes (the body as sent is bounded by
    :class:`~provarmor.manager.body_limit.BodyLimit` while it is read)."""
    body = await request.body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return bytes(body)
    if encoding != "gzip":
        raise ApiError(415, f"unsupported content encoding {encoding!r}", field="Content-Encoding")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(bytes(body), limit + 1)
    except zlib.error as exc:
        raise ApiError(400, f"bad gzip body: {exc}", field="body") from None
    if len(plain) > limit or inflater.unconsumed_tail:
        raise ApiError(413, f"batch over {limit} bytes decompressed", field="body")
    if not inflater.eof:
        raise ApiError(400, "truncated gzip body", field="body")
    return plain


def _sequence(header: str | None) -> int:
    field = "X-Batch-Sequence"
    if header is None:
        raise ApiError(400, f"{field} must be a positive integer", field=field)
    sequence = parse_int64(header, field=field, what=field)
    if sequence < 1:
        raise ApiError(400, f"{field} must be a positive integer", field=field)
    return sequence


@router.post("/agents/{agent_id}/batches")
async def upload(
    agent_id: str,
    request: Request,
    principal: Agent,
    context: Context,
    x_batch_sequence: Annotated[str | None, Header()] = None,
) -> BatchAck:
    """Upload one batch of canonical events (NDJSON, optionally gzip). A batch whose sequence
    is not above the agent's acknowledged one is acknowledged again as a duplicate and
    ignored."""
    sequence = _sequence(x_batch_sequence)
    metrics = context.metrics
    body = await _read_body(request, limit=context.settings.max_upload_bytes)
    agent = context.store.agent(agent_id)
    if agent is None:
        raise ApiError(404, "unknown agent", field="agent_id")
    try:
        result: UploadResult = await run_in_threadpool(
            context.ingestor.ingest, agent, sequence=sequence, body=body
        )
    except ParseError as exc:
        metrics.uploads.labels(result="rejected").inc()
        metrics.rejected.inc()
        raise ApiError(400, str(exc), field=exc.location or "body") from None
    except BatchTooLarge as exc:
        metrics.uploads.labels(result="rejected").inc()
        raise ApiError(413, str(exc), field="body") from None
    metrics.unwritten.inc(result.unwritten)
    if result.duplicate:
        metrics.uploads.labels(result="duplicate").inc()
    else:
        metrics.uploads.labels(result="accepted").inc()
        metrics.events.inc(result.events)
        metrics.alerts.inc(result.alerts)
        metrics.incidents.inc(result.incidents)
    return BatchAck(
        acked_sequence=result.acked_sequence,
        duplicate=result.duplicate,
        events=result.events,
        alerts=result.alerts,
        incidents=result.incidents,
    )


@router.get("/agents/{agent_id}/batches/acked")
def acked(agent_id: str, principal: Agent, context: Context) -> AckedSequence:
    """The highest sequence acknowledged to this agent (where its spool resumes)."""
    agent = context.store.agent(agent_id)
    if agent is None:
        raise ApiError(404, "unknown agent", field="agent_id")
    return AckedSequence(acked_sequence=agent.acked_sequence)


@router.post("/agents/{agent_id}/status", status_code=204)
def status(agent_id: str, body: StatusReport, principal: Agent, context: Context) -> None:
    """The agent's sensor, health and drop counters (shown under ``GET /hosts``); the
    commands of its host that waited past their time expire or time out here too."""
    now = time.time_ns()
    context.store.record_status(
        agent_id, status_json=json.dumps(body.model_dump(), sort_keys=True), now_ns=now
    )
    agent = context.store.agent(agent_id)
    if agent is not None:
        sweep(context, now, host=agent.host_id)
