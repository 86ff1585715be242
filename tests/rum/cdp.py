"""A small Chrome DevTools Protocol driver: Debian's headless Chromium, driven over aiohttp.

Only what the browser test needs, in the protocol's own terms
(https://chromedevtools.github.io/devtools-protocol/): Chromium is started with
``--remote-debugging-port=0`` (it picks a free port and writes it to DevToolsActivePort in
the profile, so there is no race for the port), the test talks to the browser target's
websocket and attaches to the page with ``flatten`` sessions, so one socket carries every
command and event.  Input goes through ``Input.dispatchMouseEvent``: the page sees trusted
events, which Event Timing (INP) and web-vitals' "stop LCP at the first input" listen for.

Everything the page logs, throws or has the browser log about it (a CORS refusal, a failed
beacon) is collected in ``Page.console``, for failure messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from peers.process import LOOPBACK, Process

CHROMIUM = Path("/usr/bin/chromium")

# A fixed window so layout (and so which element is the largest contentful paint) does not
# depend on the machine; no first-run UI, no background traffic to Google, nothing from a
# user profile.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--mute-audio",
    "--window-size=1280,800",
)


class CDPError(RuntimeError):
    """A command answered with an error, or the browser went away."""


class Connection:
    """One websocket to the browser target: numbered commands, their answers, and events."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[tuple[str, str | None, Callable[[dict[str, Any]], None]]] = []
        self._reader = asyncio.create_task(self._read())

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None, timeout: float = 15
    ) -> dict[str, Any]:
        if self._reader.done():
            raise CDPError(f"{method}: the DevTools connection is closed")
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            await self._ws.send_str(json.dumps(message))
            async with asyncio.timeout(timeout):
                answer = await future
        except TimeoutError:
            raise CDPError(f"{method}: no answer in {timeout:g}s") from None
        finally:
            self._pending.pop(ident, None)
        if "error" in answer:
            raise CDPError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def on(self, method: str, session: str | None, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(params)`` for every ``method`` event of ``session``."""
        self._listeners.append((method, session, callback))

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if "id" in data:
                    future = self._pending.get(data["id"])
                    if future is not None and not future.done():
                        future.set_result(data)
                    continue
                for method, session, callback in list(self._listeners):
                    if data.get("method") == method and data.get("sessionId") == session:
                        callback(data.get("params", {}))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CDPError("the DevTools connection closed"))

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()


class Page:
    """One tab, attached with a flat session."""

    def __init__(self, conn: Connection, session: str, log_path: Path) -> None:
        self.conn = conn
        self.session = session
        self.log_path = log_path  # Chromium's own output (stderr), for failure messages
        self.console: list[str] = []
        self._loaded = asyncio.Event()
        conn.on("Page.loadEventFired", session, lambda _: self._loaded.set())
        conn.on("Runtime.consoleAPICalled", session, self._console_called)
        conn.on("Runtime.exceptionThrown", session, self._exception_thrown)
        conn.on("Log.entryAdded", session, self._log_entry)

    async def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 15) -> dict[str, Any]:
        return await self.conn.send(method, params, session=self.session, timeout=timeout)

    async def enable(self) -> None:
        for domain in ("Page", "Runtime", "Log"):
            await self.send(f"{domain}.enable")

    async def navigate(self, url: str, timeout: float = 20) -> None:
        """Go to ``url`` and wait for its load event (which waits for its images)."""
        self._loaded.clear()
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigating to {url}: {result['errorText']}")
        try:
            async with asyncio.timeout(timeout):
                await self._loaded.wait()
        except TimeoutError:
            raise CDPError(f"{url}: no load event in {timeout:g}s") from None

    async def evaluate(self, expression: str, *, await_promise: bool = False, timeout: float = 15) -> Any:
        """The JSON value of ``expression`` in the page; a page exception is raised as CDPError."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"evaluating {expression!r}: {text}")
        return result["result"].get("value")

    async def idle(self, attempts: int = 10) -> None:
        """Wait until the page has had an idle period, as it would while a user reads it.

        Work that the page (web-vitals, for one) defers with ``requestIdleCallback`` has run
        then.  Headless Chromium sometimes grants no idle time after a long task until a
        frame is produced, so each attempt asks for two animation frames first.
        """
        for _ in range(attempts):
            timed_out = await self.evaluate(
                "new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() =>"
                " requestIdleCallback((deadline) => resolve(deadline.didTimeout), {timeout: 1000}))))",
                await_promise=True,
            )
            if not timed_out:
                return
        raise CDPError(f"the page had no idle period in {attempts} attempts")

    async def click(self, selector: str) -> None:
        """A real (trusted) left click in the middle of the element ``selector`` names."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        x, y = box["x"], box["y"]
        await self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
            )

    def _console_called(self, params: dict[str, Any]) -> None:
        args = " ".join(str(a.get("value", a.get("description", a.get("type")))) for a in params.get("args", []))
        self.console.append(f"console.{params.get('type')}: {args}")

    def _exception_thrown(self, params: dict[str, Any]) -> None:
        details = params.get("exceptionDetails", {})
        text = details.get("exception", {}).get("description") or details.get("text")
        self.console.append(f"exception: {text} ({details.get('url', '')}:{details.get('lineNumber')})")

    def _log_entry(self, params: dict[str, Any]) -> None:
        entry = params.get("entry", {})
        self.console.append(
            f"log.{entry.get('level')} [{entry.get('source')}]: {entry.get('text')} {entry.get('url', '')}"
        )


class Browser:
    """The running Chromium process and the DevTools connection to it."""

    def __init__(self, process: Process, profile: Path, conn: Connection) -> None:
        self.process = process
        self.profile = profile
        self.conn = conn

    async def new_page(self) -> Page:
        """The first tab, attached and with Page, Runtime and Log events on."""
        targets = await self.conn.send("Target.getTargets")
        pages = [t for t in targets["targetInfos"] if t["type"] == "page"]
        if pages:
            target = pages[0]["targetId"]
        else:
            target = (await self.conn.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        attached = await self.conn.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self.conn, attached["sessionId"], self.process.log_path)
        await page.enable()
        return page


def _devtools_port(profile: Path, process: Process, timeout: float) -> int:
    """The port Chromium chose, from the first line of DevToolsActivePort in its profile."""
    deadline = time.monotonic() + timeout
    path = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        process.check_running()
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(path.read_text().splitlines()[0])
        time.sleep(0.05)
    raise CDPError(f"Chromium wrote no {path} in {timeout:g}s; its log:\n{process.log_tail()}")


@asynccontextmanager
async def chromium(log_dir: Path, *, timeout: float = 20) -> AsyncIterator[Browser]:
    """Headless Chromium with a throw-away profile; killed and its profile removed on exit."""
    profile = Path(tempfile.mkdtemp(prefix="rum-chromium-"))
    process = Process(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        log_dir / "chromium.log",
    )
    http: aiohttp.ClientSession | None = None
    conn: Connection | None = None
    try:
        process.start()
        port = await asyncio.to_thread(_devtools_port, profile, process, timeout)
        http = aiohttp.ClientSession()
        async with http.get(f"http://{LOOPBACK}:{port}/json/version") as resp:
            version = await resp.json()
        ws = await http.ws_connect(version["webSocketDebuggerUrl"], max_msg_size=0)
        conn = Connection(ws)
        yield Browser(process, profile, conn)
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.send("Browser.close", timeout=5), 5)
            await conn.close()
        if http is not None:
            await http.close()
        process.stop(timeout=5)
        shutil.rmtree(profile, ignore_errors=True)
