"""Real Redis servers on loopback for the test suite: standalone, replica, cluster, sentinel.

Each server runs ``redis-server`` in the foreground with persistence off and
its own directory, on a port picked at random (never the machine's own 6379).
The classes are context managers; the pytest fixtures at the bottom are loaded
with ``pytest_plugins = ["tests.servers.redis"]``.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from peers.process import (
    LOOPBACK,
    Process,
    ProcessError,
    free_port,
    tail,
    wait_until,
)

REDIS_SERVER = "redis-server"
REDIS_CLI = "redis-cli"

# Distinctive so a test can grep logs, metrics and error messages for leaks.
REDIS_PASSWORD = "s3cr3t-REDIS-pw-7f9d"

# Generous for a loaded 2-core machine; a healthy start takes ~10 ms.
START_TIMEOUT = 10.0
# Cluster creation and sentinel discovery involve gossip and timers.
CONVERGE_TIMEOUT = 30.0
# A random port may be taken between free_port() and the server's bind.
_PORT_ATTEMPTS = 3


class _RedisProcess:
    """What servers and sentinels share: a port, a directory, a process, a client."""

    def __init__(
        self,
        tmpdir: Path,
        port: int | None = None,
        password: str | None = None,
    ) -> None:
        self.dir = Path(tmpdir)
        self._fixed_port = port is not None
        self._started = False
        self.port = port if port is not None else free_port()
        self.password = password
        self.logfile = self.dir / "redis.log"
        self.process: Process | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port}>"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def address(self) -> str:
        """``127.0.0.1:port``, as redis-cli and CLUSTER commands spell it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL without the password: tests pass the password separately."""
        return f"redis://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def _args(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write whatever files the process needs before it starts."""

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new synchronous client (with the password); close it when done.

        Short timeouts and no retries by default so a paused or dead server
        fails a test quickly: redis-py 6 otherwise retries connection errors,
        AuthenticationError included, with backoff (a wrong password takes ~10 s).
        """
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "password": self.password,
            "decode_responses": True,
            "socket_timeout": 2.0,
            "socket_connect_timeout": 2.0,
            "retry": Retry(NoBackoff(), 0),
        }
        options.update(kwargs)
        return redis.Redis(**options)

    def ping(self) -> bool:
        """Whether the server answers PING now (False rather than raising)."""
        try:
            with self.client(socket_timeout=0.5, socket_connect_timeout=0.5) as c:
                return bool(c.ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        """Start and wait until PING answers; retries on another port if needed.

        Once started, the port is kept for good: a restart must come back where
        clients, replicas and cluster peers expect it.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(_PORT_ATTEMPTS):
            self._prepare()
            self.process = Process([REDIS_SERVER, *self._args()], self.dir / "stdout.log", cwd=self.dir)
            self.process.start()
            try:
                self._wait_ready()
            except ProcessError:
                self.process.kill()
                if self._fixed_port or attempt == _PORT_ATTEMPTS - 1:
                    raise
                self._pick_ports()
            except BaseException:
                self.process.kill()
                raise
            else:
                self._fixed_port = self._started = True
                return

    def _pick_ports(self) -> None:
        """Choose new ports after a failed start on ports we picked ourselves."""
        self.port = free_port()

    def _wait_ready(self) -> None:
        process = self.process
        assert process is not None

        def answers_ping() -> bool:
            process.check_running()
            return self.ping()

        try:
            wait_until(answers_ping, START_TIMEOUT, message=f"{self!r} answers PING")
        except TimeoutError as exc:
            raise ProcessError(f"{exc}; log:\n{self.log_tail()}") from exc

    def log_tail(self, lines: int = 30) -> str:
        output = self.process.log_tail(lines) if self.process is not None else ""
        return f"{tail(self.logfile, lines)}\n{output}"

    def stop(self, timeout: float = 5.0) -> None:
        """Shut down with SIGTERM (SIGKILL after ``timeout``); safe to call twice."""
        if self.process is not None:
            self.process.stop(timeout)

    def kill(self) -> None:
        """SIGKILL: the server vanishes like a crash, without closing connections."""
        if self.process is not None:
            self.process.kill()

    def restart(self, kill: bool = False) -> None:
        """Stop (or kill) and start again on the same port with the same directory."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the port stays open and connections hang, like a stuck server."""
        assert self.process is not None
        self.process.pause()

    def resume(self) -> None:
        assert self.process is not None
        self.process.resume()


class RedisServer(_RedisProcess):
    """A standalone ``redis-server``, or a replica when ``replica_of`` is given.

    The dataset lives in memory only: a restart starts empty unless the test
    ran SAVE, whose dump.rdb in the same directory is then loaded again.
    """

    def __init__(
        self,
        tmpdir: Path,
        port: int | None = None,
        password: str | None = None,
        extra_args: Sequence[str] = (),
        replica_of: RedisServer | None = None,
    ) -> None:
        super().__init__(tmpdir, port, password)
        self.extra_args = list(extra_args)
        self.replica_of = replica_of

    @property
    def url(self) -> str:
        return f"{super().url}/0"

    def _args(self) -> list[str]:
        args = [
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--logfile", str(self.logfile),
            # A primary waits 5 s by default before a diskless full sync, in
            # case more replicas show up; tests want the replica linked now.
            "--repl-diskless-sync-delay", "0",
            # tests hang a server on purpose with DEBUG SLEEP
            "--enable-debug-command", "local",
        ]  # fmt: skip
        if self.password is not None:
            args += ["--requirepass", self.password]
        if self.replica_of is not None:
            args += ["--replicaof", self.replica_of.host, str(self.replica_of.port)]
            if self.replica_of.password is not None:
                args += ["--masterauth", self.replica_of.password]
        return args + self.extra_args

    def info(self, section: str | None = None) -> dict[str, Any]:
        with self.client() as c:
            return c.info(section)  # type: ignore[no-any-return]

    def master_link_status(self) -> str | None:
        """``up`` or ``down`` on a replica; None on a primary."""
        status = self.info("replication").get("master_link_status")
        return None if status is None else str(status)

    def wait_for_link_up(self, timeout: float = CONVERGE_TIMEOUT) -> None:
        """Wait until this replica has synced with its primary."""
        wait_until(
            lambda: self.master_link_status() == "up",
            timeout,
            message=f"{self!r} master_link_status:up",
            ignore=(AssertionError, redis.RedisError),
        )

    def wait_for_link_down(self, timeout: float = CONVERGE_TIMEOUT) -> None:
        wait_until(
            lambda: self.master_link_status() == "down",
            timeout,
            message=f"{self!r} master_link_status:down",
            ignore=(AssertionError, redis.RedisError),
        )


def wait_for_replica_link_up(replica: RedisServer, timeout: float = CONVERGE_TIMEOUT) -> None:
    """Wait until ``INFO replication`` on ``replica`` shows ``master_link_status:up``."""
    replica.wait_for_link_up(timeout)


class RedisClusterNode(RedisServer):
    """A cluster-enabled server with its own cluster bus port.

    The default bus port is port+10000, which may be taken or above 65535 for
    a random port, so it gets a free port of its own.
    """

    def __init__(self, tmpdir: Path, index: int, password: str | None, node_timeout_ms: int) -> None:
        super().__init__(tmpdir, password=password)
        self.index = index
        self.node_timeout_ms = node_timeout_ms
        self.bus_port = free_port()

    def _pick_ports(self) -> None:
        super()._pick_ports()
        self.bus_port = free_port()

    def _args(self) -> list[str]:
        args = [
            *super()._args(),
            "--cluster-enabled", "yes",
            "--cluster-config-file", f"nodes-{self.index}.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-port", str(self.bus_port),
        ]  # fmt: skip
        if self.password is not None:
            # Only needed once replicas exist, but harmless and keeps a
            # password-protected cluster usable after CLUSTER REPLICATE.
            args += ["--masterauth", self.password]
        return args


class RedisCluster:
    """A Redis Cluster of ``masters`` primaries (no replicas), all slots assigned.

    Each node has its own directory, so its nodes-<index>.conf survives a
    restart and the node rejoins the cluster with its slots.
    """

    def __init__(
        self,
        tmpdir: Path,
        masters: int = 3,
        password: str | None = None,
        node_timeout_ms: int = 2000,
    ) -> None:
        if masters < 3:
            # redis-cli --cluster create refuses fewer than 3 masters.
            raise ValueError("a Redis Cluster needs at least 3 masters")
        self.dir = Path(tmpdir)
        self.password = password
        self.nodes: list[RedisClusterNode] = [
            RedisClusterNode(self.dir / f"node-{index}", index, password, node_timeout_ms) for index in range(masters)
        ]

    def __repr__(self) -> str:
        return f"<RedisCluster {' '.join(node.address for node in self.nodes)}>"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The first node's URL: any node is a valid entry point for a cluster client."""
        return self.nodes[0].url

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> None:
        try:
            for node in self.nodes:
                node.start()
            self._create()
            self.wait_for_ok()
        except BaseException:
            self.stop()
            raise

    def _create(self) -> None:
        args = [REDIS_CLI]
        if self.password is not None:
            args += ["-a", self.password, "--no-auth-warning"]
        args += ["--cluster", "create", *(node.address for node in self.nodes)]
        args += ["--cluster-replicas", "0", "--cluster-yes"]
        result = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CONVERGE_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise ProcessError(
                f"redis-cli --cluster create failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )

    def cluster_info(self, node: RedisServer) -> dict[str, Any]:
        with node.client() as c:
            return c.cluster("INFO")  # type: ignore[no-any-return]

    def is_ok(self) -> bool:
        """Every node sees state ok, all slots assigned and every other node."""
        for node in self.nodes:
            info = self.cluster_info(node)
            if (
                info.get("cluster_state") != "ok"
                or int(info.get("cluster_slots_assigned", 0)) != 16384
                or int(info.get("cluster_known_nodes", 0)) != len(self.nodes)
            ):
                return False
        return True

    def wait_for_ok(self, timeout: float = CONVERGE_TIMEOUT) -> None:
        wait_until(
            self.is_ok,
            timeout,
            interval=0.1,
            message=f"{self!r} cluster_state:ok on every node",
            ignore=(AssertionError, redis.RedisError),
        )

    def client(self, **kwargs: Any) -> redis.cluster.RedisCluster:
        """A new cluster-aware synchronous client; close it when done."""
        options: dict[str, Any] = {
            "host": self.nodes[0].host,
            "port": self.nodes[0].port,
            "password": self.password,
            "decode_responses": True,
            "socket_timeout": 2.0,
            "socket_connect_timeout": 2.0,
        }
        options.update(kwargs)
        return redis.cluster.RedisCluster(**options)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class RedisSentinel(_RedisProcess):
    """A Sentinel watching ``primary`` under ``master_name``.

    Sentinel rewrites its config file with what it learns, so a restart keeps
    that state; the file is written only on the first start.  With
    ``down_after_ms=1000`` a primary paused or killed for about a second is
    failed over, so tests that do that need their own sentinel.
    """

    def __init__(
        self,
        tmpdir: Path,
        primary: RedisServer,
        master_name: str = "mymaster",
        quorum: int = 1,
        port: int | None = None,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
    ) -> None:
        super().__init__(tmpdir, port)
        self.primary = primary
        self.master_name = master_name
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.config_path = self.dir / "sentinel.conf"

    def _prepare(self) -> None:
        if self._started:
            # A restart: keep what Sentinel wrote into its config.
            return
        name = self.master_name
        lines = [
            f"port {self.port}",
            f"bind {self.host}",
            f"dir {self.dir}",
            f"logfile {self.logfile}",
            "daemonize no",
            f"sentinel monitor {name} {self.primary.host} {self.primary.port} {self.quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
        ]
        if self.primary.password is not None:
            lines.append(f"sentinel auth-pass {name} {self.primary.password}")
        self.config_path.write_text("\n".join(lines) + "\n")

    def _args(self) -> list[str]:
        return [str(self.config_path), "--sentinel"]

    def start(self) -> None:
        super().start()
        try:
            self.wait_for_master()
        except BaseException:
            self.kill()
            raise

    # Raw SENTINEL commands: redis-py 6.4's sentinel_master() fails with
    # "unexpected keyword argument 'return_responses'", and the raw field/value
    # lists are what an exporter sees anyway.

    def masters(self) -> list[dict[str, str]]:
        """SENTINEL MASTERS as one dict of raw string fields per master."""
        with self.client() as c:
            replies = c.execute_command("SENTINEL", "MASTERS")
        return [_pairs(reply) for reply in replies]

    def master(self) -> dict[str, str]:
        """SENTINEL MASTER <name> as raw string fields (``flags``, ``num-slaves`` ...)."""
        with self.client() as c:
            return _pairs(c.execute_command("SENTINEL", "MASTER", self.master_name))

    def replicas(self) -> list[dict[str, str]]:
        with self.client() as c:
            replies = c.execute_command("SENTINEL", "REPLICAS", self.master_name)
        return [_pairs(reply) for reply in replies]

    def master_address(self) -> tuple[str, int] | None:
        """Where Sentinel says the primary is now (it changes after a failover)."""
        with self.client() as c:
            address = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
        return None if address is None else (str(address[0]), int(address[1]))

    def wait_for_master(self, timeout: float = CONVERGE_TIMEOUT) -> None:
        """Wait until SENTINEL MASTERS lists the master and it is not down."""

        def master_listed() -> bool:
            masters = {m["name"]: m for m in self.masters()}
            master = masters.get(self.master_name)
            return master is not None and master["flags"] == "master"

        wait_until(
            master_listed,
            timeout,
            interval=0.1,
            message=f"{self!r} lists master {self.master_name}",
            ignore=(AssertionError, redis.RedisError),
        )

    def wait_for_replicas(self, count: int, timeout: float = CONVERGE_TIMEOUT) -> None:
        """Wait until Sentinel has discovered ``count`` replicas (it asks the primary)."""
        wait_until(
            lambda: int(self.master().get("num-slaves", 0)) >= count,
            timeout,
            interval=0.1,
            message=f"{self!r} knows {count} replica(s) of {self.master_name}",
            ignore=(AssertionError, redis.RedisError),
        )


def _pairs(reply: Sequence[Any]) -> dict[str, str]:
    """A flat [field, value, field, value ...] reply as a dict."""
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply), 2)}


@dataclass(frozen=True)
class RedisReplication:
    """A primary with one replica whose link is up."""

    primary: RedisServer
    replica: RedisServer


@dataclass(frozen=True)
class RedisSentinelSetup:
    """A primary, its replica and a Sentinel that knows both."""

    primary: RedisServer
    replica: RedisServer
    sentinel: RedisSentinel


@contextlib.contextmanager
def replication(tmpdir: Path, password: str | None = None) -> Iterator[RedisReplication]:
    """Start a primary and a replica; the replica stops first on the way out.

    Stopping the replica first matters: a primary shutting down waits for
    lagging replicas (shutdown-timeout, 10 s), e.g. one a test left paused.
    """
    with contextlib.ExitStack() as stack:
        primary = stack.enter_context(RedisServer(tmpdir / "primary", password=password))
        replica = stack.enter_context(RedisServer(tmpdir / "replica", password=password, replica_of=primary))
        replica.wait_for_link_up()
        yield RedisReplication(primary, replica)


# -- pytest fixtures ---------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A standalone shared by the whole session: do not stop, pause or FLUSHALL it.

    Tests that write use their own db number or delete their own keys.
    """
    with RedisServer(tmp_path_factory.mktemp("redis-server")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_with_password(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisServer]:
    """A shared standalone requiring REDIS_PASSWORD; ``.url`` has no password in it."""
    with RedisServer(tmp_path_factory.mktemp("redis-password"), password=REDIS_PASSWORD) as server:
        yield server


@pytest.fixture
def redis_fresh(tmp_path: Path) -> Iterator[RedisServer]:
    """A standalone of this test's own, free to kill, restart, pause or flush."""
    with RedisServer(tmp_path / "redis-fresh") as server:
        yield server


@pytest.fixture
def redis_replication(tmp_path: Path) -> Iterator[RedisReplication]:
    """A primary and a replica of this test's own, the link up."""
    with replication(tmp_path / "redis-replication") as pair:
        yield pair


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A shared 3-master cluster with every slot assigned: do not stop its nodes."""
    with RedisCluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisSentinelSetup]:
    """A shared Sentinel with its own primary and replica (both discovered).

    Pausing or stopping this primary triggers a failover within seconds and
    changes the setup for later tests: do that with your own RedisSentinel.
    """
    tmpdir = tmp_path_factory.mktemp("redis-sentinel")
    with (
        replication(tmpdir) as pair,
        RedisSentinel(tmpdir / "sentinel", pair.primary) as sentinel,
    ):
        sentinel.wait_for_replicas(1)
        yield RedisSentinelSetup(pair.primary, pair.replica, sentinel)
