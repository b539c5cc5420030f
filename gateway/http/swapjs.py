"""Serves swap.js (a stable alias and a content-hashed URL) and the demo site under /demo/."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

__all__ = [
    "ALIAS_CACHE",
    "DEMO_CSP",
    "IMMUTABLE_CACHE",
    "SWAP_SCRIPT",
    "SwapScript",
    "add_routes",
    "load_swap_script",
    "minify",
]

STATIC_DIR = Path(__file__).parent / "static"
DEMO_DIR = STATIC_DIR / "demo"
# The alias is what sites embed: a change reaches every site within five minutes, and a
# revalidation is a cheap 304 by ETag. The hashed URL never changes, so it is cached a year.
ALIAS_CACHE = "public, max-age=300, must-revalidate"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
# The demo pages run under the strict policy real sites use, proving swap.js needs no exemption.
DEMO_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_JS_TYPE = "application/javascript"
_DEMO_FILE = re.compile(r"^[a-z0-9-]+\.(html|js|css|svg)$")
_SCRIPT_TAG = re.compile(rb"<script[^>]*swap\.js[^>]*></script>\n?")
_DEMO_TYPES = {
    "html": "text/html",
    "js": _JS_TYPE,
    "css": "text/css",
    "svg": "image/svg+xml",
}


@dataclass(frozen=True)
class SwapScript:
    """The script as served: minified body, its gzip form and a short content hash."""

    body: bytes
    gzipped: bytes
    digest: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'

    @property
    def hashed_path(self) -> str:
        return f"/swap.{self.digest}.js"


SWAP_SCRIPT = web.AppKey("swap_script", SwapScript)


def minify(source: str) -> str:
    """Drop full-line comments, blank lines and indentation; lines are kept so ASI holds."""
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


def load_swap_script(path: Path = STATIC_DIR / "swap.js") -> SwapScript:
    """Read, minify, gzip and hash the script (blocking: call it off the event loop)."""
    body = minify(path.read_text(encoding="utf-8")).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()[:12]
    return SwapScript(body=body, gzipped=gzip.compress(body, 9, mtime=0), digest=digest)


async def _swap_script_ctx(app: web.Application) -> AsyncIterator[None]:
    app[SWAP_SCRIPT] = await asyncio.to_thread(load_swap_script)
    yield


def _script_response(request: web.Request, script: SwapScript, cache: str) -> web.StreamResponse:
    headers = {
        "Cache-Control": cache,
        "ETag": script.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        # Any site may load it, also with crossorigin + SRI or under COEP.
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if script.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    body = script.body
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body = script.gzipped
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers, content_type=_JS_TYPE, charset="utf-8")


async def _alias(request: web.Request) -> web.StreamResponse:
    return _script_response(request, request.app[SWAP_SCRIPT], ALIAS_CACHE)


async def _hashed(request: web.Request) -> web.StreamResponse:
    script = request.app[SWAP_SCRIPT]
    if request.match_info["digest"] != script.digest:
        # An old hash after an upgrade: send the browser to the current script.
        raise web.HTTPFound(script.hashed_path, headers={"Cache-Control": "no-cache"})
    return _script_response(request, script, IMMUTABLE_CACHE)


async def _demo_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/demo/")


async def _demo(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"] or "index.html"
    if not _DEMO_FILE.match(name) or not (DEMO_DIR / name).is_file():
        # Client-side routes (history.pushState) land on the app shell when reloaded.
        if "." in name:
            raise web.HTTPNotFound()
        name = "index.html"
    path = DEMO_DIR / name
    body = await asyncio.to_thread(path.read_bytes)
    if request.query.get("ctgw") == "off":
        # The same page without the script: shows the site's own numbers, and is the baseline
        # bench/swapjs.py compares load times against.
        body = _SCRIPT_TAG.sub(b"", body)
    kind = _DEMO_TYPES[path.suffix[1:]]
    return web.Response(
        body=body,
        content_type=kind,
        charset="utf-8",
        headers={"Content-Security-Policy": DEMO_CSP, "Cache-Control": "no-cache"},
    )


def add_routes(app: web.Application) -> None:
    """Register GET /swap.js, GET /swap.<hash>.js and the demo site under /demo/."""
    app.cleanup_ctx.append(_swap_script_ctx)
    app.router.add_get("/swap.js", _alias)
    app.router.add_get(r"/swap.{digest:[0-9a-f]{12}}.js", _hashed)
    app.router.add_get("/demo", _demo_root)
    app.router.add_get("/demo/{name:[^/]*}", _demo)
