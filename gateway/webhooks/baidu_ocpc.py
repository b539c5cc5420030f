"""The Baidu OCPC conversion upload client: one batch per request, retried as Baidu's API
documentation says (docs/conversions.md has the rules and where they were found).

The token goes in the request body only; it is never logged, and an answer that echoes it has
it masked before the answer is kept or logged."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import aiohttp
import structlog

from reports.conversions import BAIDU_MAX_BATCH

__all__ = ["ACCEPTED", "REJECTED", "RETRY", "TOKEN", "BaiduAnswer", "BaiduItem", "BaiduOcpcClient"]

log = structlog.get_logger()

# What became of a batch: Baidu took it; try again later; Baidu refused the data (retrying the
# same data cannot help); Baidu refused the token (nothing can be sent until it is fixed).
ACCEPTED, RETRY, REJECTED, TOKEN = "accepted", "retry", "rejected", "token"
# header.status of the answer: 0 success and 4 a server error to retry (Baidu's sample code,
# docs/conversions.md); 1 some conversions refused, 2 all refused; 3 a refused token or a system
# error (unconfirmed), so retried on a later run, never rejected; any other status is retried.
_STATUS_OUTCOME = {0: ACCEPTED, 1: REJECTED, 2: REJECTED, 3: TOKEN, 4: RETRY}
_MAX_ANSWER = 2000


class BaiduItem(NamedTuple):
    """One conversion as Baidu takes it: the landing URL with its bd_vid, and the type."""

    logid_url: str
    new_type: int


class BaiduAnswer(NamedTuple):
    """A batch's outcome, the answer's header.status (None when there was no answer) and the
    answer (or the failure) as text, token masked."""

    outcome: str
    status: int | None
    text: str


Sleep = Callable[[float], Awaitable[None]]


class BaiduOcpcClient:
    """Posts batches to a Baidu OCPC upload endpoint with a shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: str,
        token: str,
        *,
        timeout_seconds: float = 10.0,
        attempts: int = 3,
        first_delay: float = 1.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._session = session
        self._endpoint = endpoint
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._attempts = max(1, attempts)
        self._first_delay = first_delay
        self._sleep = sleep

    def body(self, items: Sequence[BaiduItem]) -> dict[str, Any]:
        """The request body of one batch (the documented shape)."""
        if not 0 < len(items) <= BAIDU_MAX_BATCH:
            raise ValueError(f"a batch holds 1-{BAIDU_MAX_BATCH} conversions, not {len(items)}")
        return {
            "token": self._token,
            "conversionTypes": [{"logidUrl": i.logid_url, "newType": i.new_type} for i in items],
        }

    async def upload(self, items: Sequence[BaiduItem]) -> BaiduAnswer:
        """Send one batch; a failure worth retrying is tried again, with a doubling, jittered
        delay, up to `attempts` times in all. Returns the last answer."""
        payload = json.dumps(self.body(items), ensure_ascii=False).encode()
        answer = BaiduAnswer(RETRY, None, "not sent")
        for attempt in range(self._attempts):
            if attempt:
                delay = self._first_delay * 2 ** (attempt - 1)
                await self._sleep(delay * (0.5 + random.random() / 2))
            answer = await self._post(payload)
            log.info(
                "baidu_ocpc_batch",
                endpoint=self._endpoint,
                conversions=len(items),
                attempt=attempt + 1,
                outcome=answer.outcome,
                status=answer.status,
            )
            if answer.outcome != RETRY:
                return answer
        return answer

    async def _post(self, payload: bytes) -> BaiduAnswer:
        try:
            async with self._session.post(
                self._endpoint,
                data=payload,
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=self._timeout,
                allow_redirects=False,  # a redirect would turn the POST into a GET
            ) as response:
                text = await response.text(errors="replace")
                if response.status != 200:
                    return BaiduAnswer(RETRY, None, self._mask(f"HTTP {response.status}: {text}"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            return BaiduAnswer(RETRY, None, self._mask(f"{type(exc).__name__}: {exc}"))
        return self._read(text)

    def _read(self, text: str) -> BaiduAnswer:
        try:
            status = json.loads(text)["header"]["status"]
        except (ValueError, KeyError, TypeError):
            return BaiduAnswer(RETRY, None, self._mask(f"unreadable answer: {text}"))
        if not isinstance(status, int) or isinstance(status, bool):
            return BaiduAnswer(RETRY, None, self._mask(f"unreadable answer: {text}"))
        return BaiduAnswer(_STATUS_OUTCOME.get(status, RETRY), status, self._mask(text))

    def _mask(self, text: str) -> str:
        if self._token:
            text = text.replace(self._token, "***")
        return text[:_MAX_ANSWER]
