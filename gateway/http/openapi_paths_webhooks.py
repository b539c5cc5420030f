"""OpenAPI 3.1 path items and schemas of the webhooks routes (merged by gateway/http/openapi.py)."""

from __future__ import annotations

from typing import Any

__all__ = ["PATHS", "SCHEMAS"]

# "/v1/..." -> {"get": operation, ...}, as OpenAPI 3.1 JSON; filled by the webhooks routes' author.
PATHS: dict[str, dict[str, Any]] = {}
# components/schemas entries these paths refer to ("#/components/schemas/Name").
SCHEMAS: dict[str, Any] = {}
