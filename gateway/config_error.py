"""The one error a config can raise (its own module: the settings modules raise it too)."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names file, key and reason."""
