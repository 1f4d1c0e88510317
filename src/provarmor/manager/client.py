"""The agent's side of the manager API: enrolment, batch upload, status and response
commands, over httpx.

Transport failures, 5xx and 429 answers are retried with exponential backoff (up to
``retries`` times); anything else that is not a success raises :class:`UplinkError` at once.
A batch is sent with ``X-Batch-Sequence``; the server acknowledges a sequence it already has
as a duplicate, so retrying an upload whose answer was lost is safe.
"""

from __future__ import annotations

import gzip
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec

from provarmor.bus.credentials import BusAccess
from provarmor.manager.actions import Command, CommandResult
from provarmor.manager.auth import split_token
from provarmor.model.codec import encode_ndjson
from provarmor.model.errors import StorageError
from provarmor.model.event import Event

API = "/api/v1"
ENROLMENT_VERSIONS = (1, 2)
"""Enrolment answers this client reads (2 adds the bus, :mod:`provarmor.manager.routes.agents`)."""
GZIP_ABOVE_BYTES = 4096


class UplinkError(StorageError):
    """The manager could not be reached, or refused a request."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    acked_sequence: int
    duplicate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 10.0


class ManagerClient:
    """Talks to one manager as one agent. ``credential`` is the agent's token (from
    :meth:`enroll`); its id part is the agent id."""

    def __init__(
        self,
        url: str,
        credential: str | None = None,
        ca_file: Path | None = None,
        *,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.credential = credential
        self.retry = retry or RetryPolicy()
        self.bus: BusAccess | None = None
        """Cluster mode: the bus and this agent's credentials on it (from enrolment)."""
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self._http = httpx.Client(base_url=self.url, verify=verify, timeout=timeout_s)

    @property
    def agent_id(self) -> str:
        parts = split_token(self.credential or "")
        if parts is None:
            raise UplinkError("no agent credential: enrol first", location=self.url)
        return parts[0]

    def close(self) -> None:
        self._http.close()

    def enroll(self, token: str, *, host_id: str, hostname: str = "") -> str:
        """Trade an enrolment token for a credential (kept, and returned to be saved); in
        cluster mode the answer also says where to publish batches, kept in ``bus``."""
        answer = self._request(
            "POST", f"{API}/enroll", json={"token": token, "host_id": host_id, "hostname": hostname}
        )
        where = f"{self.url}{API}/enroll"
        data = answer.json()
        version = data.get("version", 1) if isinstance(data, dict) else None
        if version not in ENROLMENT_VERSIONS:
            raise UplinkError(f"enrolment answer version {version!r} is unknown", location=where)
        credential = data.get("credential")
        if not isinstance(credential, str):
            raise UplinkError("enrolment answer has no credential", location=where)
        bus = data.get("bus")
        self.bus = None if bus is None else BusAccess.from_dict(bus, location=f"{where} bus")
        self.credential = credential
        return credential

    def upload(self, sequence: int, events: Sequence[Event]) -> Ack:
        """Send one batch; returns the server's acknowledgement."""
        body = encode_ndjson(events)
        headers = {"X-Batch-Sequence": str(sequence), "Content-Type": "application/x-ndjson"}
        if len(body) > GZIP_ABOVE_BYTES:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        answer = self._request(
            "POST", f"{API}/agents/{self.agent_id}/batches", content=body, headers=headers
        )
        data = answer.json()
        return Ack(acked_sequence=int(data["acked_sequence"]), duplicate=bool(data["duplicate"]))

    def acked_sequence(self) -> int:
        """The highest sequence the manager has acknowledged to this agent."""
        answer = self._request("GET", f"{API}/agents/{self.agent_id}/batches/acked")
        return int(answer.json()["acked_sequence"])

    def report_status(self, status: dict[str, object]) -> None:
        self._request("POST", f"{API}/agents/{self.agent_id}/status", json=status)

    def commands(self) -> list[Command]:
        """The response commands waiting for this agent's host."""
        answer = self._request("GET", f"{API}/agents/{self.agent_id}/commands")
        try:
            return msgspec.convert(answer.json()["commands"], type=list[Command])
        except (KeyError, TypeError, msgspec.ValidationError) as exc:
            raise UplinkError(f"not a command list: {exc}", location=self.url) from None

    def command_key(self) -> str:
        """The manager's command signing key (base64 Ed25519 public key), for commands
        that come on the bus."""
        answer = self._request("GET", f"{API}/agents/{self.agent_id}/command-key")
        key = answer.json().get("public_key")
        if not isinstance(key, str):
            raise UplinkError("no command key in the answer", location=self.url)
        return key

    def command_delivered(self, command_id: str) -> None:
        """Say that a command came from the bus (the manager awaits its result from now)."""
        self._request("POST", f"{API}/agents/{self.agent_id}/commands/{command_id}/delivered")

    def report_result(self, command_id: str, result: CommandResult) -> None:
        """Report what came of a command (reporting the same result again is harmless)."""
        self._request(
            "POST",
            f"{API}/agents/{self.agent_id}/commands/{command_id}/result",
            content=msgspec.json.encode(result),
            headers={"Content-Type": "application/json"},
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if self.credential is not None:
            all_headers["Authorization"] = f"Bearer {self.credential}"
        delay = self.retry.backoff_s
        problem = ""
        for attempt in range(self.retry.retries + 1):
            if attempt:
                time.sleep(delay)
                delay = min(delay * 2, self.retry.max_backoff_s)
            try:
                answer = self._http.request(
                    method, path, json=json, content=content, headers=all_headers
                )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if answer.status_code >= 500 or answer.status_code == 429:
                problem = f"HTTP {answer.status_code}: {_message(answer)}"
                continue
            if answer.is_success:
                return answer
            raise UplinkError(
                f"HTTP {answer.status_code}: {_message(answer)}", location=f"{self.url}{path}"
            )
        raise UplinkError(
            f"gave up after {self.retry.retries + 1} attempts: {problem}",
            location=f"{self.url}{path}",
        )


def _message(answer: httpx.Response) -> str:
    try:
        data = answer.json()
    except ValueError:
        return answer.text[:200]
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return answer.text[:200]
