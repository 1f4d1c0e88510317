"""The model bundle: ONE versioned file holding a trained :class:`~.scorer.AnomalyModel`.

Layout (``format_version`` 2)::

    provarmor-anomaly-model\\n        magic line
    {header JSON}\\n                   format version, metadata, per-executable token counts,
                                      surprises, threshold
    sha256:<hex of all of the above>\\n

The digest is verified at load: a modified or truncated bundle is a :class:`ConfigError`
naming the file. The file digest (``bundle_digest``) identifies a model in alerts and logs.

Format 1 (FastText vectors and an autoencoder) is refused with a message asking for a
retrain: its scores are not comparable with format 2's conditional-rarity scores, and at its
calibrated threshold it flagged 5 of 232 attacker processes (measured on the lab scenarios).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec

from provarmor.detection.anomaly.scorer import AnomalyModel
from provarmor.model.errors import ConfigError

FORMAT_VERSION = 2
MAGIC = b"provarmor-anomaly-model\n"
_DIGEST_PREFIX = b"sha256:"


class Version(msgspec.Struct, frozen=True):
    format_version: int


class Header(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int
    metadata: dict[str, Any]
    processes: int
    executables: dict[str, int]
    known: dict[str, int]
    document_frequency: dict[str, int]
    escape: dict[str, float]
    global_escape: dict[str, float]
    new_executable: float
    global_weight: float
    top_tokens: int
    threshold: float


def dump_bundle(model: AnomalyModel) -> bytes:
    """The bundle's bytes."""
    header = Header(
        format_version=FORMAT_VERSION,
        metadata=model.metadata,
        processes=model.processes,
        executables=model.executables,
        known=model.known,
        document_frequency=model.document_frequency,
        escape=model.escape,
        global_escape=model.global_escape,
        new_executable=model.new_executable,
        global_weight=model.global_weight,
        top_tokens=model.top_tokens,
        threshold=model.threshold,
    )
    body = MAGIC + msgspec.json.encode(header) + b"\n"
    return body + _DIGEST_PREFIX + hashlib.sha256(body).hexdigest().encode() + b"\n"


def save_bundle(model: AnomalyModel, path: Path) -> str:
    """Write the bundle (atomically: temp file then rename); returns its sha256 file digest."""
    data = dump_bundle(model)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
    return hashlib.sha256(data).hexdigest()


def load_bundle(path: Path) -> AnomalyModel:
    """Read and verify a bundle; any damage is a ConfigError naming ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read anomaly model: {exc.strerror}", location=str(path)
        ) from None
    return parse_bundle(data, location=str(path))


def parse_bundle(data: bytes, *, location: str) -> AnomalyModel:
    """Verify and decode bundle bytes."""
    body = _verified_body(data, location=location)
    header_end = body.find(b"\n", len(MAGIC))
    text = body[len(MAGIC) : header_end if header_end >= 0 else len(body)]
    try:
        version = msgspec.json.decode(text, type=Version).format_version
        if version != FORMAT_VERSION:
            raise ConfigError(
                f"anomaly model format {version} is not supported (this build reads "
                f"{FORMAT_VERSION}; format 1 models must be retrained with `provarmor train`)",
                location=location,
            )
        header = msgspec.json.decode(text, type=Header)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"anomaly model header is invalid: {exc}", location=location) from None
    if header.threshold <= 0.0 or header.top_tokens < 1:
        raise ConfigError("anomaly model has no usable threshold", location=location)
    return AnomalyModel(
        processes=header.processes,
        executables=header.executables,
        known=header.known,
        document_frequency=header.document_frequency,
        escape=header.escape,
        global_escape=header.global_escape,
        new_executable=header.new_executable,
        global_weight=header.global_weight,
        top_tokens=header.top_tokens,
        threshold=header.threshold,
        metadata={**header.metadata, "bundle_digest": hashlib.sha256(data).hexdigest()},
    )


def _verified_body(data: bytes, *, location: str) -> bytes:
    if not data.startswith(MAGIC):
        raise ConfigError("not an anomaly model bundle (bad magic line)", location=location)
    split = data.rfind(_DIGEST_PREFIX)
    if split < 0 or not data.endswith(b"\n"):
        raise ConfigError("anomaly model is truncated (no digest line)", location=location)
    body, expected = data[:split], data[split + len(_DIGEST_PREFIX) : -1].decode("ascii", "replace")
    if hashlib.sha256(body).hexdigest() != expected:
        raise ConfigError(
            "anomaly model is damaged or modified (digest mismatch)", location=location
        )
    return body
