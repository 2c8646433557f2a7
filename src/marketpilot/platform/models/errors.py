"""Errors of the model registry.

They subclass :class:`RegistryError` so an adapter (CLI, HTTP) can map the whole family to one
user-facing error, and carry messages that name the model, version or alias involved: the
operator reads them verbatim from `marketpilot models ...`.
"""

from __future__ import annotations


class RegistryError(RuntimeError):
    """Base of every model-registry error."""


class ModelNotFound(RegistryError, LookupError):
    """No registered model, version or alias by that name; the message names it."""


class NoPreviousChampion(RegistryError):
    """`rollback` was asked for but there is no earlier champion to restore."""


class ArtifactError(RegistryError):
    """Model files cannot be written or read back (unknown flavour, untrusted type, missing file)."""
