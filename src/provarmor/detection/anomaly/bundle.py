"""The model bundle: ONE versioned file holding a trained :class:`~.scorer.AnomalyModel`.

Layout (``format_version`` 1)::

    provarmor-anomaly-model\\n        magic line
    {header JSON}\\n                   format version, metadata, vocabulary, IDF counts,
                                      per-executable errors, threshold, array table
    <array bytes>                     little-endian float32 arrays, at the offsets listed
    sha256:<hex of all of the above>\\n

The digest is verified at load: a modified or truncated bundle is a :class:`ConfigError`
naming the file. The file digest (``bundle_digest``) identifies a model in alerts and logs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from provarmor.detection.anomaly.embedding import FloatArray, WordVectors
from provarmor.detection.anomaly.scorer import AnomalyModel
from provarmor.model.errors import ConfigError

FORMAT_VERSION = 1
MAGIC = b"provarmor-anomaly-model\n"
_DIGEST_PREFIX = b"sha256:"
_DTYPE = "<f4"


class ArrayEntry(msgspec.Struct, frozen=True):
    name: str
    shape: list[int]
    offset: int


class Header(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int
    metadata: dict[str, Any]
    processes: int
    min_n: int
    max_n: int
    vocabulary: list[str]
    document_frequency: dict[str, int]
    executable_error: dict[str, float]
    global_error: float
    threshold: float
    arrays: list[ArrayEntry]


def dump_bundle(model: AnomalyModel) -> bytes:
    """The bundle's bytes."""
    arrays: dict[str, FloatArray] = {
        "vectors": model.words.vectors,
        "ngram_vectors": model.words.ngram_vectors,
        "feature_mean": model.feature_mean,
        "feature_scale": model.feature_scale,
    }
    for index, (weights, bias) in enumerate(model.layers):
        arrays[f"layer{index}.weights"] = weights
        arrays[f"layer{index}.bias"] = bias
    entries = []
    blob = bytearray()
    for name, array in arrays.items():
        entries.append(ArrayEntry(name=name, shape=list(array.shape), offset=len(blob)))
        blob += np.ascontiguousarray(array, dtype=_DTYPE).tobytes()
    vocabulary = sorted(model.words.index, key=model.words.index.__getitem__)
    header = Header(
        format_version=FORMAT_VERSION,
        metadata=model.metadata,
        processes=model.processes,
        min_n=model.words.min_n,
        max_n=model.words.max_n,
        vocabulary=vocabulary,
        document_frequency=model.document_frequency,
        executable_error=model.executable_error,
        global_error=model.global_error,
        threshold=model.threshold,
        arrays=entries,
    )
    body = MAGIC + msgspec.json.encode(header) + b"\n" + bytes(blob)
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
    try:
        header = msgspec.json.decode(body[len(MAGIC) : header_end], type=Header)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"anomaly model header is invalid: {exc}", location=location) from None
    if header.format_version != FORMAT_VERSION:
        raise ConfigError(
            f"anomaly model format {header.format_version} is not supported "
            f"(this build reads {FORMAT_VERSION})",
            location=location,
        )
    arrays = _arrays(body[header_end + 1 :], header.arrays, location=location)
    layer_count = sum(1 for name in arrays if name.endswith(".weights"))
    words = WordVectors(
        vocabulary=header.vocabulary,
        vectors=arrays["vectors"],
        ngram_vectors=arrays["ngram_vectors"],
        min_n=header.min_n,
        max_n=header.max_n,
    )
    return AnomalyModel(
        words=words,
        document_frequency=header.document_frequency,
        processes=header.processes,
        feature_mean=arrays["feature_mean"],
        feature_scale=arrays["feature_scale"],
        layers=tuple(
            (arrays[f"layer{index}.weights"], arrays[f"layer{index}.bias"])
            for index in range(layer_count)
        ),
        executable_error=header.executable_error,
        global_error=header.global_error,
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


def _arrays(blob: bytes, entries: list[ArrayEntry], *, location: str) -> dict[str, FloatArray]:
    arrays: dict[str, FloatArray] = {}
    itemsize = np.dtype(_DTYPE).itemsize
    for entry in entries:
        count = int(np.prod(entry.shape)) if entry.shape else 1
        end = entry.offset + count * itemsize
        if entry.offset < 0 or end > len(blob):
            raise ConfigError(f"anomaly model array {entry.name} out of range", location=location)
        values = np.frombuffer(blob, dtype=_DTYPE, count=count, offset=entry.offset)
        arrays[entry.name] = values.reshape(entry.shape).astype(np.float32)
    required = {"vectors", "ngram_vectors", "feature_mean", "feature_scale", "layer0.weights"}
    if missing := required - arrays.keys():
        raise ConfigError(f"anomaly model lacks arrays: {sorted(missing)}", location=location)
    return arrays
