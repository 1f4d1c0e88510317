"""The error hierarchy. Every error ProvArmor raises on purpose is one of these.

    ProvArmorError            base; carries an optional ``location``
    ├── ParseError            bad input record (file:line, or request field)
    ├── ConfigError           bad setting
    ├── StorageError          the store failed or holds an unknown format
    └── RuleError             a rule file could not be loaded

Callers that keep going after bad input catch ``ParseError`` only; anything else
is a bug and should surface.
"""

from __future__ import annotations


class ProvArmorError(Exception):
    """Base error. ``location`` names where the problem is (``file:line``, a field)."""

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location:
            return f"{self.location}: {self.message}"
        return self.message


class ParseError(ProvArmorError):
    """A record could not be parsed. The record is skipped and counted; nothing else is lost."""


class ConfigError(ProvArmorError):
    """A setting is missing, of the wrong type, or out of range."""


class StorageError(ProvArmorError):
    """The store failed, or holds data of a format version this build cannot read."""


class RuleError(ProvArmorError):
    """A detection rule could not be loaded."""
