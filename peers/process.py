"""Child processes on loopback: free ports, start, wait until ready, stop, log capture.

One implementation for everything that runs real servers beside the exporter: the
test suite's fixtures (tests/servers/), the benchmarks (bench/) and ``make demo``.
Every child runs in its own session (so its process group can be signalled as a
whole), writes its output to a log file, and is tracked in a module-level registry
that an ``atexit`` hook empties, so an aborted run leaves no strays behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")

LOOPBACK = "127.0.0.1"

# The exporter as users run it: the console script of the environment running this code,
# so a test, a benchmark or the demo starts the code of the checkout it runs from.
STACK_EXPORTER = Path(sys.prefix) / "bin" / "stack-exporter"

# Ports handed out recently: two free_port() calls made before either server
# binds could otherwise be given the same port by the kernel.
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now and not handed out before.

    The port is released before the caller binds it, so another process may
    take it in between; callers that can should retry with a new port.
    """
    with _handed_out_lock:
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((LOOPBACK, 0))
                port: int = sock.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no free TCP port found on 127.0.0.1")


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    *,
    message: str = "",
    ignore: tuple[type[BaseException], ...] = (AssertionError,),
) -> T:
    """Poll ``predicate`` until it returns a truthy value, and return that value.

    Exceptions of the ``ignore`` types count as "not yet", so a predicate may
    be a function full of asserts; the last one is chained to the TimeoutError
    so a failing poll says why it never became true.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
            last_error = None
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"not true after {timeout:g}s: {what}") from last_error
        time.sleep(interval)


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until host:port accepts TCP connections."""
    wait_until(
        lambda: port_is_open(host, port),
        timeout,
        message=f"{host}:{port} accepts connections",
    )


def temp_dir(prefix: str, owner: str | None = None) -> Path:
    """A new temp dir, traversable by other users, owned by ``owner`` if given.

    Servers that refuse to run as root (PostgreSQL, PgBouncer) run as another user and
    need to reach their files below it.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o711)
    if owner is not None:
        shutil.chown(path, owner, owner)
    return path


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages; empty if it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ProcessError(RuntimeError):
    """A child process failed to start or died when it should have been running."""


# PR_SET_PDEATHSIG makes the kernel kill a child whose parent dies, which covers
# what atexit cannot: pytest killed with SIGKILL or os._exit (pytest-timeout's
# thread method).  libc is loaded here, before any fork, so the pre-exec hook
# only makes one system call.
_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None
if sys.platform == "linux":
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_live: set[Process] = set()
_live_lock = threading.Lock()


@atexit.register
def _kill_leftovers() -> None:
    with _live_lock:
        leftovers = list(_live)
    for process in leftovers:
        process.kill()


class Process:
    """One child process with its output in a log file.

    Signals go to the child's whole process group (it is a session leader), so
    servers that fork workers (PostgreSQL backends, Redis's RDB child) stop as
    a whole and SIGSTOP freezes all of them.  ``start()`` may be called again
    after the process ended, which is how servers restart in place.
    """

    def __init__(
        self,
        args: Sequence[str | os.PathLike[str]],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> None:
        self.args = [os.fspath(arg) for arg in args]
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.user = user
        self._popen: subprocess.Popen[bytes] | None = None
        self._paused = False

    def __repr__(self) -> str:
        return f"<Process pid={self.pid} {' '.join(self.args)!r}>"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        """Whether the child exists and has not exited (a paused one is running)."""
        return self._popen is not None and not self._exited()

    @property
    def paused(self) -> bool:
        return self._paused and self.running

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has been stopped or killed."""
        return self._popen.returncode if self._popen is not None else None

    def _exited(self) -> bool:
        # WNOWAIT leaves an exited child as a zombie: until it is reaped its pid
        # (and so its process group id) cannot be reused by the kernel, which
        # keeps every killpg below from hitting some unrelated process group.
        assert self._popen is not None
        if self._popen.returncode is not None:
            return True
        try:
            status = os.waitid(os.P_PID, self._popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return status is not None

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)

    def start(self) -> None:
        if self.running:
            raise ProcessError(f"{self!r} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Appending keeps the log of earlier runs of a restarted server.
        with self.log_path.open("ab") as log:
            log.write(f"--- start: {' '.join(self.args)}\n".encode())
            log.flush()
            # The death signal is tied to the forking thread: a child started
            # from a worker thread would die when that thread ends, so only the
            # main thread (which lives as long as the process) asks for it.  The
            # hook is one prctl() through an already-loaded libc, which takes no
            # lock another thread could hold across the fork.
            on_main_thread = threading.current_thread() is threading.main_thread()
            self._popen = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
                user=self.user,
                preexec_fn=_die_with_parent if on_main_thread else None,
            )
        self._paused = False
        with _live_lock:
            _live.add(self)

    def check_running(self) -> None:
        """Raise ProcessError with the log tail if the child has exited."""
        if not self.running:
            returncode = self._reap() if self._popen is not None else None
            raise ProcessError(f"{self!r} exited with {returncode}; log {self.log_path}:\n{self.log_tail()}")

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the child's process group if the child is still alive."""
        if self._popen is not None and self._popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, sig)

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): it keeps its sockets but answers nothing."""
        self.check_running()
        self.signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self._paused = False

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL if the process is still there after ``timeout``.

        Returns the exit code (None if it was never started); safe to call twice.
        """
        if self._popen is None:
            return None
        if self.running:
            self.signal(signal.SIGTERM)
            # A stopped process only acts on SIGTERM once it is continued.
            self.signal(signal.SIGCONT)
            with contextlib.suppress(TimeoutError):
                wait_until(self._exited, timeout, interval=0.02)
        return self._reap()

    def wait(self, timeout: float) -> int:
        """Wait for a child that ends by itself (initdb, a data load) and return its exit code.

        Raises TimeoutError if it is still running after ``timeout``; it is left running.
        """
        if self._popen is None:
            raise ProcessError(f"{self!r} was never started")
        wait_until(self._exited, timeout, interval=0.02, message=f"{self!r} exits")
        return self._reap()

    def kill(self) -> int | None:
        """SIGKILL, like a crash or the OOM killer: no shutdown code runs."""
        if self._popen is None:
            return None
        return self._reap()

    def _reap(self) -> int:
        assert self._popen is not None
        if self._popen.returncode is None:
            # Kill the whole group before reaping the leader: this also ends
            # workers that outlived it, and the unreaped leader keeps the group
            # id from being reused.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGKILL)
        returncode = self._popen.wait()
        self._paused = False
        with _live_lock:
            _live.discard(self)
        return returncode


class AsyncInThread(Generic[T]):
    """An async context manager (an aiohttp fake upstream) on an event loop of its own thread.

    For synchronous code, the end-to-end test and the demo, that needs a fake HTTP
    service running beside it: ``with AsyncInThread(FakeX()) as fake:``.
    """

    def __init__(self, manager: AbstractAsyncContextManager[T]) -> None:
        self.manager = manager
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="async-in-thread", daemon=True)

    def __enter__(self) -> T:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self.manager.__aenter__(), self.loop).result(30)

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.manager.__aexit__(None, None, None), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
