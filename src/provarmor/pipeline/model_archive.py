"""A host's model archive: its learned model versions and its learning checkpoint, in one
directory.

    model-v0001.bundle ...     every version (bundle format 2), oldest pruned past ``keep``
    learning.json.gz           the learning checkpoint (:func:`~provarmor.detection.anomaly.
                               learning.dump_checkpoint`), replaced atomically

Files are written to a temporary name and renamed, so a crash leaves the previous file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from provarmor.detection.anomaly.bundle import load_bundle, save_bundle
from provarmor.detection.anomaly.scorer import AnomalyModel

CHECKPOINT_FILE = "learning.json.gz"
_BUNDLE = re.compile(r"model-v(\d+)\.bundle")


class ModelArchive:
    """Versioned bundles and the checkpoint of one host."""

    def __init__(self, directory: Path, *, keep: int) -> None:
        self.directory = directory
        self.keep = max(keep, 1)
        self.pruned = 0
        """Old versions deleted by this archive (past ``keep``)."""

    def path_of(self, version: int) -> Path:
        return self.directory / f"model-v{version:04d}.bundle"

    def versions(self) -> list[int]:
        """The versions on disk, oldest first."""
        if not self.directory.is_dir():
            return []
        found = (_BUNDLE.fullmatch(path.name) for path in self.directory.iterdir())
        return sorted(int(match.group(1)) for match in found if match is not None)

    def save(self, model: AnomalyModel, version: int) -> str:
        """Store a version (its sha256 digest is returned); prune the oldest past ``keep``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        digest = save_bundle(model, self.path_of(version))
        for old in self.versions()[: -self.keep]:
            self.path_of(old).unlink(missing_ok=True)
            self.pruned += 1
        return digest

    def latest(self) -> tuple[int, AnomalyModel] | None:
        """The newest version and its model (a damaged bundle is a ConfigError naming it)."""
        versions = self.versions()
        if not versions:
            return None
        return versions[-1], load_bundle(self.path_of(versions[-1]))

    @property
    def checkpoint_path(self) -> Path:
        return self.directory / CHECKPOINT_FILE

    def read_checkpoint(self) -> bytes | None:
        try:
            return self.checkpoint_path.read_bytes()
        except FileNotFoundError:
            return None

    def write_checkpoint(self, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.checkpoint_path
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)

    def set_aside_checkpoint(self) -> Path:
        """Move an unreadable checkpoint out of the way (kept for inspection)."""
        target = self.checkpoint_path.with_name(CHECKPOINT_FILE + ".unreadable")
        self.checkpoint_path.replace(target)
        return target
