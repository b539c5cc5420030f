"""The admin API's calls: the list with its filters, one call, and the CSV download."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from gateway.appkeys import CONFIG, DB
from gateway.http.errors import ApiError
from gateway.store.bulk_read import read_rendered
from gateway.store.calls import CallFilter, calls_select, find_call, list_calls, record_from_row
from gateway.store.database import sqlite_path
from gateway.store.pg.database import PgDatabase
from gateway.store.pg.thread_reads import read_rendered_pg
from numberpool.calls import CALL_STATES
from reports.call_export import csv_chunks

__all__ = ["call_show", "calls_download", "calls_list"]

# SQLite's OFFSET is a signed 64-bit integer.
_MAX_OFFSET = 2**63 - 1


def _time(query: Any, name: str) -> datetime | None:
    text = query.get(name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        # In UTC now, as the store keeps times: 9999-12-31T23:59:59-14:00 is past the calendar.
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(
            400,
            "invalid_parameter",
            f"'{name}' must be an ISO 8601 time, e.g. 2026-01-31T00:00:00Z",
        ) from None
    except OverflowError:
        raise ApiError(
            400, "invalid_parameter", f"'{name}' is out of range: give a time within years 1-9999"
        ) from None


def _count(query: Any, name: str, default: int, low: int, high: int) -> int:
    """An integer parameter: ASCII digits only, within low-high, else a 400 naming it."""
    text = query.get(name)
    if text is None:
        return default
    # int() would also take '1_0', ' 7' and Arabic digits, and raises past 4300 digits.
    if text.isascii() and text.isdigit() and len(text) <= len(str(high)):
        value = int(text)
        if low <= value <= high:
            return value
    raise ApiError(400, "invalid_parameter", f"'{name}' must be an integer from {low} to {high}")


def _filter(request: web.Request, max_limit: int) -> CallFilter:
    q = request.query
    state = q.get("state") or None
    if state is not None and state not in CALL_STATES:
        raise ApiError(400, "invalid_parameter", f"'state' must be one of {', '.join(CALL_STATES)}")
    limit = _count(q, "limit", min(100, max_limit), 1, max_limit)
    offset = _count(q, "offset", 0, 0, _MAX_OFFSET)
    return CallFilter(
        _time(q, "since"), _time(q, "until"), q.get("site") or None, state, limit, offset
    )


async def calls_list(request: web.Request) -> web.Response:
    calls = await list_calls(request.app[DB], _filter(request, 1000))
    return web.json_response({"calls": calls})


async def calls_download(request: web.Request) -> web.StreamResponse:
    """The calls as a CSV file, streamed: read and written out on a thread of its own, so no
    FastAGI route waits behind a download (gateway/store/bulk_read.py)."""
    sql, params = calls_select(_filter(request, 100_000))

    def csv_of(rows: Iterable[Any]) -> Iterable[str]:
        return csv_chunks(record_from_row(row) for row in rows)

    db = request.app[DB]
    if isinstance(db, PgDatabase):
        source = read_rendered_pg(db, sql, params, csv_of)
    else:
        source = read_rendered(sqlite_path(request.app[CONFIG].store.url), sql, params, csv_of)
    async with contextlib.aclosing(source) as chunks:
        # The query has run when the first chunk comes: its errors are still JSON answers.
        first = await anext(chunks, b"")
        response = web.StreamResponse(
            headers={"Content-Disposition": 'attachment; filename="calls.csv"'}
        )
        response.content_type = "text/csv"
        response.charset = "utf-8"
        if request.method == "HEAD":
            # The size, as a GET would send it, and no body (a stream's body is not held back).
            response.content_length = len(first) + sum([len(chunk) async for chunk in chunks])
            await response.prepare(request)
            await response.write_eof()
            return response
        await response.prepare(request)
        try:
            await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
        except ConnectionError:
            return response  # the client went away; closing `chunks` stops the thread
        except Exception:
            structlog.get_logger().exception("calls_download_failed")
            # Cut the connection: the client sees a broken download, not a complete-looking file.
            if request.transport is not None:
                request.transport.abort()
            return response
    await response.write_eof()
    return response


async def call_show(request: web.Request) -> web.Response:
    call = await find_call(request.app[DB], request.match_info["call_id"])
    if call is None:
        raise ApiError(404, "unknown_call", "no such call")
    return web.json_response(call)
