"""OpenAPI path items of the staff pages: HTML for people, described briefly
(gateway/http/staff*.py, dashboard.py, agent_console.py).

They are listed so the description names every route the gateway answers (a security review
wants the whole surface), but their bodies are pages and forms, not a machine contract: every
page answers text/html, a form post answers 303 to the next page, and a browser without a staff
session is sent to the login page. Form posts carry the session's CSRF token in `csrf`.
"""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_schemas import (
    PUBLIC,
    STAFF_PAGE,
    TEXT,
    html_page,
    param,
    see_other,
)

__all__ = ["PATHS", "SCHEMAS"]

# (method, path, operationId, summary); pages are GET, forms POST.
_PAGES = (
    ("get", "/staff", "staffHome", "Redirect to the user's home page (or the login page)"),
    ("get", "/staff/", "staffHomeSlash", "The same as GET /staff"),
    ("post", "/staff/logout", "staffLogout", "Log out"),
    ("get", "/staff/users", "staffUsers", "The staff users (admins)"),
    ("post", "/staff/users", "staffAddUser", "Add a staff user (admins)"),
    ("get", "/staff/dashboard", "staffDashboard", "The dashboard"),
    ("get", "/staff/campaigns", "staffCampaigns", "Calls and costs by campaign"),
    ("get", "/staff/pools", "staffPools", "The pools and their sizing"),
    ("get", "/staff/calls", "staffCalls", "The call list"),
    ("get", "/staff/calls/{call_id}", "staffCall", "One call"),
    ("post", "/staff/calls/{call_id}/marks", "staffMarkCall", "Mark a call spam or test"),
    ("post", "/staff/calls/{call_id}/disposition", "staffDisposition", "Set a disposition"),
    ("get", "/staff/agent", "staffAgent", "The agent console (screen pops)"),
    ("get", "/staff/contacts", "staffContacts", "The contact list"),
    ("get", "/staff/contacts/{contact_id}", "staffContact", "One contact"),
    ("post", "/staff/contacts/{contact_id}", "staffSaveContact", "Save a contact's lead"),
    ("post", "/staff/contacts/{contact_id}/call", "staffCallContact", "Click to call a contact"),
    ("get", "/staff/tasks", "staffTasks", "The task list"),
    ("post", "/staff/tasks/{task_id}/close", "staffCloseTask", "Close a task"),
    ("post", "/staff/tasks/{task_id}/call", "staffCallTask", "Click to call a task's contact"),
)

_TO_LOGIN = see_other("No staff session: to /staff/login; after a form: to the next page.")
_FORBIDDEN = html_page("The role may not see this page, or the form's CSRF token is stale.")
_FORM = {
    "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}},
}


def _operation(method: str, path: str, op_id: str, summary: str) -> dict[str, Any]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    op: dict[str, Any] = {
        "operationId": op_id,
        "tags": ["staff pages"],
        "summary": summary,
        "security": STAFF_PAGE,
        "parameters": [param(name, "path", TEXT, "") for name in names],
        "responses": {
            "200": html_page(),
            "303": _TO_LOGIN,
            "400": html_page("The form is incomplete or wrong."),
            "403": _FORBIDDEN,
            "404": html_page("No such item."),
        },
    }
    if method == "post":
        op["requestBody"] = _FORM
    return op


def _pages() -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op_id, summary in _PAGES:
        paths.setdefault(path, {})[method] = _operation(method, path, op_id, summary)
    return paths


PATHS: dict[str, dict[str, Any]] = {
    **_pages(),
    "/staff/login": {
        "get": {
            "operationId": "staffLoginForm",
            "tags": ["staff pages"],
            "summary": "The login form",
            "security": PUBLIC,
            "parameters": [param("next", "query", TEXT, "Where to go after logging in.")],
            "responses": {"200": html_page()},
        },
        "post": {
            "operationId": "staffLogin",
            "tags": ["staff pages"],
            "summary": "Log in (form fields email, password, next); sets the ctgw_staff cookie",
            "security": PUBLIC,
            "requestBody": _FORM,
            "responses": {
                "303": see_other("Logged in: to `next` or the user's home."),
                "400": html_page("The form is missing."),
                "401": html_page("Wrong email or password."),
                "403": html_page("The form was not sent from this site."),
                "429": html_page("Too many failed logins; `Retry-After` says how long."),
            },
        },
    },
    "/staff/agent/events": {
        "get": {
            "operationId": "staffAgentEvents",
            "tags": ["staff pages"],
            "summary": "The agent console's screen pops as server-sent events",
            "security": STAFF_PAGE,
            "responses": {
                "200": {
                    "description": "An event stream that stays open.",
                    "content": {"text/event-stream": {"schema": TEXT}},
                },
                "303": _TO_LOGIN,
                "403": _FORBIDDEN,
            },
        }
    },
}

SCHEMAS: dict[str, Any] = {}
