"""Marks people put on stored calls (spam, test) and the campaign costs they enter: every
statement on `campaign_costs` and on the marks of `calls`. A mark never deletes a call."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from gateway.store.database import Database, Write
from reports.costs import CostRow

__all__ = ["call_marks", "call_site", "cost_writes", "list_costs", "mark_write"]

_COST_SQL = (
    "INSERT INTO campaign_costs (site, source, campaign, first_day, last_day, amount, currency)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(site, source, campaign, first_day) DO UPDATE SET"
    " last_day = excluded.last_day, amount = excluded.amount, currency = excluded.currency"
)
_KEEP_COST_SQL = (
    "INSERT INTO campaign_costs (site, source, campaign, first_day, last_day, amount, currency)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


async def call_site(db: Database, call_id: str) -> str | None:
    """The site of a stored call, None when there is no such call."""
    row = await db.fetchone("SELECT site FROM calls WHERE call_id = ?", (call_id,))
    return None if row is None else str(row["site"])


async def call_marks(db: Database, call_id: str) -> dict[str, bool] | None:
    """The marks of a stored call, None when there is no such call."""
    row = await db.fetchone("SELECT spam, test_call FROM calls WHERE call_id = ?", (call_id,))
    return None if row is None else {"spam": bool(row["spam"]), "test": bool(row["test_call"])}


def mark_write(call_id: str, *, spam: bool | None, test: bool | None) -> Write:
    """The marks given set on the call; a mark left None keeps its stored value."""
    return Write(
        "UPDATE calls SET spam = coalesce(?, spam), test_call = coalesce(?, test_call)"
        " WHERE call_id = ?",
        (None if spam is None else int(spam), None if test is None else int(test), call_id),
        rank=70,
    )


def cost_writes(
    site: str, costs: Iterable[CostRow], *, keep_stored: bool = False, rank: int = 40
) -> list[Write]:
    """Each cost stored for `site`, replacing the one of the same source, campaign and first
    day (entering a cost again corrects it), or leaving that one as it is (`keep_stored`)."""
    return [
        Write(
            _KEEP_COST_SQL if keep_stored else _COST_SQL,
            (
                site,
                c.source,
                c.campaign,
                c.first_day.isoformat(),
                c.last_day.isoformat(),
                c.amount,
                c.currency,
            ),
            rank=rank,
        )
        for c in costs
    ]


async def list_costs(db: Database, site: str) -> list[CostRow]:
    """Every cost entered for `site`, oldest first."""
    rows = await db.fetchall(
        "SELECT source, campaign, first_day, last_day, amount, currency FROM campaign_costs"
        " WHERE site = ? ORDER BY first_day, source, campaign",
        (site,),
    )
    return [
        CostRow(
            r["source"],
            r["campaign"],
            date.fromisoformat(r["first_day"]),
            date.fromisoformat(r["last_day"]),
            float(r["amount"]),
            r["currency"],
        )
        for r in rows
    ]
