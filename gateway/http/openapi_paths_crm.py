"""OpenAPI path items of the routes an API key or a staff session may use: reports, call marks,
campaign costs, contacts, tasks, dispositions (gateway/http/admin_reports.py, admin_contacts.py).

A staff session sees only its own sites; a non-GET from a session needs its X-CSRF-Token header.
"""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_schemas import (
    STAFF_OR_KEY,
    TEXT,
    errors,
    json_answer,
    nullable,
    obj,
    param,
    ref,
)

__all__ = ["PATHS", "SCHEMAS"]

_REPORTS = ("summary", "breakdown", "days", "hours", "agents")
_DIMENSIONS = (
    *("source", "medium", "campaign", "term", "content", "landing_page", "referrer"),
    *("click_network", "kind", "tracking_number", "static_source"),
)
_STATUSES = ["new", "contacted", "qualified", "customer", "lost"]
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_DAY = {**TEXT, "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "A day, YYYY-MM-DD."}
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_CSRF = param("X-CSRF-Token", "header", TEXT, "The staff session's token (sessions only).")


def _op(
    op_id: str, tags: str, summary: str, answers: dict[str, Any], **more: Any
) -> dict[str, Any]:
    """An operation open to an API key or a staff session: 401 without either, 403 for a role
    or a site the session may not use."""
    return {
        "operationId": op_id,
        "tags": [tags],
        "summary": summary,
        "security": STAFF_OR_KEY,
        **more,
        "responses": {**answers, **errors(401, 403)},
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _report(kind: str) -> dict[str, Any]:
    params = [
        param("site", "query", TEXT, "The site (may be left out when the caller sees one)."),
        param("since", "query", _DAY, "First day (default: 30 days up to `until`)."),
        param("until", "query", _DAY, "Last day (default: today in the site's time zone)."),
        param("format", "query", {"enum": ["json", "csv", "xlsx"]}, "Default json."),
    ]
    if kind == "breakdown":
        params += [
            param("by", "query", {"enum": list(_DIMENSIONS)}, "Default campaign."),
            param("touch", "query", {"enum": ["last", "first"]}, "Default last."),
        ]
    name = f"Report{kind.title()}"
    content = {
        "application/json": {"schema": ref(name)},
        "text/csv": {"schema": TEXT},
        _XLSX: {"schema": {"type": "string", "contentEncoding": "binary"}},
    }
    return {
        "get": _op(
            f"report{kind.title()}",
            "reports",
            f"The {kind} report of a site's calls over a period",
            {"200": {"description": "The report.", "content": content}, **errors(400, 404, 500)},
            parameters=params,
        )
    }


_CONTACT_ID = param("contact_id", "path", TEXT, "The contact's id.")
_SITE_Q = param("site", "query", TEXT, "Only this site's.")

PATHS: dict[str, dict[str, Any]] = {
    **{f"/v1/reports/{kind}": _report(kind) for kind in _REPORTS},
    "/v1/calls/{call_id}/marks": {
        "post": _op(
            "markCall",
            "reports",
            "Mark a call spam or a test call (reports leave it out while marked)",
            {"200": json_answer(ref("CallMarks"), "The marks now."), **errors(400, 404, 413)},
            parameters=[param("call_id", "path", TEXT, "The call's id."), _CSRF],
            requestBody=_body(ref("CallMarksInput")),
        )
    },
    "/v1/sites/{site}/costs": {
        "parameters": [param("site", "path", {**TEXT, "maxLength": 64}, "The site's key.")],
        "get": _op(
            "listCosts",
            "reports",
            "Every campaign cost entered for the site",
            {"200": json_answer(ref("CostList"), ""), **errors(400, 404)},
        ),
        "put": _op(
            "putCosts",
            "reports",
            "Store costs, each replacing the one of the same source, campaign and first day",
            {"200": json_answer(ref("CostList"), "Every cost now."), **errors(400, 404, 413)},
            parameters=[_CSRF],
            requestBody=_body(
                obj({"costs": {"type": "array", "items": ref("CostInput"), "minItems": 1}})
            ),
        ),
    },
    "/v1/contacts": {
        "get": _op(
            "listContacts",
            "crm",
            "Leads (a contact on a site), the latest called first",
            {"200": json_answer(obj({"contacts": {"type": "array", "items": ref("Lead")}}), "")}
            | errors(400),
            parameters=[
                _SITE_Q,
                param("status", "query", {"enum": _STATUSES}, "Only leads in this status."),
                param("q", "query", TEXT, "Part of the number or name."),
                param("limit", "query", {**_INT, "minimum": 1, "maximum": 1000}, "At most."),
                param("offset", "query", {**_INT, "minimum": 0}, "Leads to skip."),
            ],
        )
    },
    "/v1/contacts/{contact_id}": {
        "parameters": [_CONTACT_ID],
        "get": _op(
            "showContact",
            "crm",
            "A contact with its leads' calls, tasks and history",
            {"200": json_answer(ref("Contact"), ""), **errors(404)},
            parameters=[_SITE_Q],
        ),
        "patch": _op(
            "editContact",
            "crm",
            "Change a lead's status, tags, notes, name, spam or test mark",
            {"200": json_answer(ref("Contact"), "The contact now."), **errors(400, 404, 413)},
            parameters=[_CSRF],
            requestBody=_body(ref("LeadEdit")),
        ),
    },
    "/v1/tasks": {
        "get": _op(
            "listTasks",
            "crm",
            "Follow-up tasks, due first",
            {"200": json_answer(obj({"tasks": {"type": "array", "items": ref("Task")}}), "")}
            | errors(400),
            parameters=[
                _SITE_Q,
                param("state", "query", {"enum": ["open", "closed", "all"]}, "Default open."),
                param("due", "query", TEXT, "Only tasks due by then (ISO 8601)."),
                param("limit", "query", {**_INT, "minimum": 1, "maximum": 1000}, "At most."),
            ],
        )
    },
    "/v1/tasks/{task_id}": {
        "patch": _op(
            "editTask",
            "crm",
            "Close, reopen or (re)assign a task",
            {"200": json_answer(ref("Task"), "The task now."), **errors(400, 404, 413)},
            parameters=[param("task_id", "path", TEXT, "The task's id."), _CSRF],
            requestBody=_body(
                obj(
                    {"state": {"enum": ["open", "closed"]}, "assignee": TEXT},
                    required=(),
                    closed=True,
                )
            ),
        )
    },
    "/v1/calls/{call_id}/disposition": {
        "post": _op(
            "setDisposition",
            "crm",
            "Say what came of a call ([crm] dispositions); may move its lead's status",
            {"200": json_answer(ref("Disposition"), "Set."), **errors(400, 404, 413)},
            parameters=[param("call_id", "path", TEXT, "The call's id."), _CSRF],
            requestBody=_body(
                obj({"disposition": TEXT, "note": {**TEXT, "maxLength": 2000}}, required=())
            ),
        )
    },
}

_HEAD = {"report": TEXT, "site": TEXT, "since": TEXT, "until": TEXT, "timezone": TEXT}
_ROWS = {"type": "array", "items": {"type": "object"}}
_REPORT_BODIES: dict[str, dict[str, Any]] = {
    "summary": {
        "previous_period": obj({"since": TEXT, "until": TEXT}),
        "summary": {"type": "object"},
        "previous": {"type": "object"},
        "changes": {"type": "object"},
    },
    "breakdown": {"by": {"enum": list(_DIMENSIONS)}, "touch": TEXT, "rows": _ROWS},
    "days": {"days": _ROWS},
    "hours": {"weekdays": ref("StringList"), "grid": {"type": "array"}},
    "agents": {"agents": _ROWS},
}
_TEXT_OR_NULL = nullable(TEXT)
_TASK = obj(
    {
        "task_id": TEXT,
        "site": TEXT,
        "contact_id": TEXT,
        "call_id": TEXT,
        "due_at": TEXT,
        "created_at": TEXT,
        "assignee": TEXT,
        "closed_at": _TEXT_OR_NULL,
        "closed_by": TEXT,
        "number": TEXT,
        "name": TEXT,
        "open": _BOOL,
    },
    required=("task_id", "site", "contact_id", "call_id", "due_at", "assignee", "closed_at"),
)
_LEAD_CALL = {
    "allOf": [ref("Call")],
    "type": "object",
    "required": ["disposition", "disposition_note", "spam"],
    "properties": {"disposition": TEXT, "disposition_note": TEXT, "spam": _BOOL},
}
_LEAD_DETAIL = obj(
    {
        "site": TEXT,
        "status": {"enum": _STATUSES},
        "tags": ref("StringList"),
        "notes": TEXT,
        "name": TEXT,
        "spam": _BOOL,
        "test": _BOOL,
        "first_touch": {"anyOf": [ref("Attribution"), {"type": "null"}]},
        "last_touch": {"anyOf": [ref("Attribution"), {"type": "null"}]},
        "calls": {"type": "array", "items": _LEAD_CALL},
        "tasks": {"type": "array", "items": ref("Task")},
        "history": {"type": "array", "items": {"type": "object"}},
    }
)

SCHEMAS: dict[str, Any] = {
    **{f"Report{k.title()}": obj({**_HEAD, **v}) for k, v in _REPORT_BODIES.items()},
    "CallMarksInput": obj({"spam": _BOOL, "test": _BOOL}, required=(), closed=True),
    "CallMarks": obj({"call_id": TEXT, "site": TEXT, "spam": _BOOL, "test": _BOOL}),
    "CostInput": obj(
        {
            "source": {**TEXT, "maxLength": 200},
            "campaign": {**TEXT, "minLength": 1, "maxLength": 200},
            "first_day": _DAY,
            "last_day": _DAY,
            "amount": {"type": "number", "minimum": 0, "maximum": 1e12},
            "currency": {**TEXT, "pattern": "^[A-Za-z]{3}$", "default": "USD"},
        },
        required=("campaign", "first_day", "last_day", "amount"),
        closed=True,
    ),
    "Cost": obj(
        {
            "source": TEXT,
            "campaign": TEXT,
            "first_day": TEXT,
            "last_day": TEXT,
            "amount": {"type": "number"},
            "currency": TEXT,
        }
    ),
    "CostList": obj({"site": TEXT, "costs": {"type": "array", "items": ref("Cost")}}),
    "Lead": obj(
        {
            "site": TEXT,
            "contact_id": TEXT,
            "number": TEXT,
            "name": TEXT,
            "status": {"enum": _STATUSES},
            "tags": ref("StringList"),
            "spam": _BOOL,
            "test": _BOOL,
            "calls": _INT,
            "first_call_at": TEXT,
            "last_call_at": TEXT,
            "open_tasks": _INT,
        }
    ),
    "LeadDetail": _LEAD_DETAIL,
    "Contact": obj(
        {
            "contact_id": TEXT,
            "number": TEXT,
            "name": TEXT,
            "sites": {"type": "array", "items": ref("LeadDetail")},
        }
    ),
    "LeadEdit": obj(
        {
            "site": {**TEXT, "maxLength": 64, "description": "Needed when several leads."},
            "status": {"enum": _STATUSES},
            "tags": {"type": "array", "items": {**TEXT, "maxLength": 40}, "maxItems": 20},
            "notes": {**TEXT, "maxLength": 5000},
            "name": {**TEXT, "maxLength": 100},
            "spam": _BOOL,
            "test": _BOOL,
        },
        required=(),
        closed=True,
    ),
    "Task": _TASK,
    "Disposition": obj(
        {
            "call_id": TEXT,
            "disposition": TEXT,
            "note": TEXT,
            "status": {**_TEXT_OR_NULL, "description": "The lead's status; null: no lead."},
        }
    ),
}
