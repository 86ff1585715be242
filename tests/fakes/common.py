"""The base of the fake upstream APIs: a real aiohttp server on a free loopback port.

Each fake (tests/fakes/<provider>.py) serves the real bodies from
tests/fakes/api-fixtures with the real status codes, headers, auth checks and
pagination.  Faults are injected per path prefix so a test can make one
endpoint slow, rate-limited or broken while the rest answer normally, and
every request is counted so tests can assert how many calls a collector made.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

FIXTURES = Path(
    # recorded bodies (the README there says where each came from), kept in the
    # repository so a clone anywhere runs the suite; the variable points at another copy
    os.environ.get("STACK_EXPORTER_API_FIXTURES", Path(__file__).resolve().parent / "api-fixtures")
)


def fixture(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / name).read_text(encoding="utf-8"))


def fixture_text(provider: str, name: str) -> str:
    return (FIXTURES / provider / name).read_text(encoding="utf-8")


@dataclass
class Fault:
    """What a faulty endpoint does instead of answering normally.

    kind: slow (sleep ``seconds`` then answer), html (200 text/html error page),
    truncated (the real JSON cut in half), huge (a 10 MB JSON body),
    ratelimit (429 with Retry-After ``seconds`` and the provider's headers),
    status (``status`` with the provider's error body).
    """

    kind: str
    seconds: float = 0.0
    status: int = 500


HUGE_BYTES = 10 * 1024 * 1024


class FakeServer:
    """Subclasses add routes in ``routes()``; ``url`` is set once started."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.faults: dict[str, Fault] = {}
        self.url = ""
        self.port = 0

    # subclasses -------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def rate_limit_headers(self, seconds: float) -> dict[str, str]:
        return {"Retry-After": str(int(seconds))}

    def rate_limit_body(self) -> Any:
        return {"error": "Too Many Requests"}

    # machinery --------------------------------------------------------------
    def calls_to(self, prefix: str) -> int:
        return sum(n for path, n in self.calls.items() if path.startswith(prefix))

    def _fault_for(self, path: str) -> Fault | None:
        for prefix, fault in self.faults.items():
            if path.startswith(prefix):
                return fault
        return None

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.calls[request.path] += 1
        fault = self._fault_for(request.path)
        if fault is None:
            return await handler(request)
        if fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
            return await handler(request)
        if fault.kind == "ratelimit":
            return web.json_response(self.rate_limit_body(), status=429, headers=self.rate_limit_headers(fault.seconds))
        if fault.kind == "html":
            page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            return web.Response(text=page, content_type="text/html")
        if fault.kind == "status":
            return web.json_response({"error": "fault"}, status=fault.status)
        resp = await handler(request)
        assert isinstance(resp, web.Response) and resp.body is not None
        body = bytes(resp.body)  # type: ignore[arg-type]
        if fault.kind == "truncated":
            return web.Response(body=body[: len(body) // 2], status=resp.status, content_type="application/json")
        if fault.kind == "huge":
            filler = b'{"padding": "' + b"x" * HUGE_BYTES + b'"}'
            return web.Response(body=filler, status=resp.status, content_type="application/json")
        raise AssertionError(f"unknown fault {fault.kind}")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeServer]:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024**2)
        self.routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            yield self
        finally:
            await runner.cleanup()


def paginate(records: list[Any], request: web.Request, default_per_page: int = 100) -> tuple[list[Any], dict[str, Any]]:
    """Lago-style pagination (app/controllers/concerns/pagination.rb): page/per_page, meta with counts."""
    per_page = max(1, int(request.query.get("per_page", default_per_page)))
    page = max(1, int(request.query.get("page", 1)))
    total = len(records)
    total_pages = (total + per_page - 1) // per_page
    chunk = records[(page - 1) * per_page : page * per_page]
    if total == 0:
        return [], {"current_page": 0, "next_page": None, "prev_page": None, "total_pages": 0, "total_count": 0}
    return chunk, {
        "current_page": page,
        "next_page": page + 1 if page < total_pages else None,
        "prev_page": page - 1 if page > 1 else None,
        "total_pages": total_pages,
        "total_count": total,
    }
