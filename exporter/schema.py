"""The bottom floor of the config: value types, the URL check, the strict YAML loader
and the converter that turns YAML into the frozen dataclasses every source declares.

It imports nothing of the exporter's, so collectors (which declare their target
classes with these types) and the loader that knows every source (``config.py``)
both stand on it without a cycle.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import stat
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import yaml

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_SECRET_BYTES",
    "ConfigError",
    "Converter",
    "Duration",
    "FileProblem",
    "Secret",
    "StrictLoader",
    "TargetConfig",
    "check_url",
    "describe",
    "expand_env",
    "file_problem",
    "join_path",
    "load_yaml",
    "read_file",
    "secrets_in",
    "url_password",
]


class ConfigError(Exception):
    """Every problem found in one config source, each prefixed by its key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{self.source}: {count} problem{'s' if count != 1 else ''}"
        return head + "".join(f"\n  - {p}" for p in self.problems)


class Duration(float):
    """Seconds, written in config as Prometheus durations: ``500ms``, ``10s``, ``1m30s``.

    A bare number is rejected rather than read as seconds: the settings it would
    most often meet mean something else by one (PostgreSQL's statement_timeout and
    Redis's timeouts count milliseconds), so ``statement_timeout: 5000`` would
    silently become 83 minutes. Prometheus rejects them too. Only 0, the same in
    every unit, needs none.
    """

    EXPECTED = "expected a duration such as 30s or 1m30s"
    _PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
    _NUMBER = re.compile(r"\d+(?:\.\d+)?")
    _UNITS: typing.ClassVar[dict[str, float]] = {
        "ms": 0.001,
        "s": 1.0,
        "m": 60.0,
        "h": 3600.0,
        "d": 86400.0,
    }

    # Bounds held at load time (see ``bounds_problem``): a timeout (a key ending in
    # ``timeout`` or ``max_duration``) lies between 1ms and a day, since a 0s deadline fails
    # every collection and more than a day is a hung backend holding a scrape; any other
    # duration (intervals, TTLs, backoffs) lies between 0 and 30 days.
    MIN_TIMEOUT = 0.001
    MAX_TIMEOUT = 86400.0
    MAX = 30 * 86400.0
    # timeouts where 0 has a meaning of its own: PostgreSQL's lock_timeout 0 turns it off
    ZERO_ALLOWED: typing.ClassVar[frozenset[str]] = frozenset({"lock_timeout"})

    @classmethod
    def parse(cls, text: str) -> Duration:
        text = text.strip()
        if cls._NUMBER.fullmatch(text):
            return cls.from_number(float(text), repr(text))
        pos, total = 0, 0.0
        for match in cls._PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * cls._UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f"{cls.EXPECTED} (units ms, s, m, h, d), got {text!r}")
        if not math.isfinite(total):
            raise ValueError(f"{cls.EXPECTED}, got {text[:40]!r}{'...' if len(text) > 40 else ''}: too large")
        return cls(total)

    @classmethod
    def from_number(cls, value: float, shown: str) -> Duration:
        """A bare number (``shown`` as the config wrote it): only 0 is a duration."""
        if value == 0:
            return cls(0.0)
        if not math.isfinite(value):
            raise ValueError(f"{cls.EXPECTED}, got {shown}, which is not a finite number")
        raise ValueError(f"{cls.EXPECTED}, got {shown} without a unit (for seconds write {value:g}s)")

    @classmethod
    def bounds_problem(cls, key: str, value: float) -> str | None:
        """Why ``value`` is out of bounds for the duration key named ``key``, or None."""
        if not math.isfinite(value) or value < 0:
            return f"must be a finite duration of 0s or more, got {value}"
        if key.endswith(("timeout", "max_duration")):
            if value == 0 and key in cls.ZERO_ALLOWED:
                return None
            if value < cls.MIN_TIMEOUT:
                return f"must be at least 1ms, got {cls.show(value)}"
            if value > cls.MAX_TIMEOUT:
                return f"must be at most 1d, got {cls.show(value)}"
        elif value > cls.MAX:
            return f"must be at most 30d, got {cls.show(value)}"
        return None

    @staticmethod
    def show(seconds: float) -> str:
        """``2592001.0`` -> ``30d1s``: as a config would write it."""
        ms = round(seconds * 1000)
        if ms == 0 or abs(ms - seconds * 1000) > 1e-6 * max(1.0, seconds):
            return f"{seconds:g}s"
        parts = []
        for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
            count, ms = divmod(ms, size)
            if count:
                parts.append(f"{count}{unit}")
        return "".join(parts)

    def __str__(self) -> str:
        return f"{float(self):g}s"


class Secret:
    """A credential: compares by value, never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('<redacted>')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, kw_only=True)
class TargetConfig:
    """Base of every source's per-target config class."""

    scrape_timeout: Duration | None = None
    # at most this many series from one collection (first ones kept); None: the
    # global series_limit_per_target, 0: no limit
    series_limit: int | None = None

    def __post_init__(self) -> None:
        if self.series_limit is not None and self.series_limit < 0:
            raise ValueError(f"series_limit: must be 0 (no limit) or more, got {self.series_limit}")

    def target_name(self) -> str:
        """The value of the ``target`` label; sections without ``name`` override this."""
        return str(getattr(self, "name"))  # noqa: B009 - defined by the subclasses

    def check(self) -> Iterable[tuple[str, str]]:
        """Cross-field checks: yield ``(key, problem)`` pairs; key may be ``""``."""
        return ()


def check_url(
    url: str,
    *,
    schemes: tuple[str, ...] = ("http", "https"),
    example: str,
    key: str = "url",
    credential_key: str | None = None,
    credentials_allowed: bool = False,
    host_required: bool = True,
) -> Iterator[tuple[str, str]]:
    """``check()`` pairs for a URL-valued key, worded the same for every source.

    ``schemes`` lists the allowed schemes; a URL with no scheme at all is told to look
    like ``example``.  A host is required unless ``host_required`` is false (a
    ``unix://`` socket, a libpq URL with ``?host=``).  Userinfo is refused unless
    ``credentials_allowed``: for an API whose key lives in ``credential_key``, the
    message points there.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        yield key, f"invalid URL: {exc}"
        return
    if not parts.scheme or "://" not in url:
        yield key, f"must be a URL such as {example}"
        return
    if parts.scheme not in schemes:
        allowed = [f"{s}://" for s in schemes]
        listed = allowed[0] if len(allowed) == 1 else ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
        yield key, f"scheme must be {listed}, got {parts.scheme}"
        return
    if host_required and not parts.hostname:
        yield key, f"missing host, e.g. {example}"
    if port is not None and not 0 < port < 65536:
        yield key, f"invalid port {port}"
    if not credentials_allowed and (parts.username or parts.password):
        where = f"; set {credential_key} or {credential_key}_file" if credential_key else ""
        yield key, f"must not contain credentials{where}"


def url_password(url: str) -> list[str]:
    """The URL's password (percent-decoded) for the redactor; [] when there is none."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [unquote(password)] if password else []


def secrets_in(obj: Any) -> Iterator[str]:
    if isinstance(obj, Secret):
        yield obj.get()
        # URL userinfo is a secret too, but lives in a plain string: collectors
        # expose extra secrets through a ``secret_values()`` method.
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        extra = getattr(obj, "secret_values", None)
        if callable(extra):
            yield from extra()
        for f in dataclasses.fields(obj):
            yield from secrets_in(getattr(obj, f.name))
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from secrets_in(item)
    elif isinstance(obj, Mapping):
        for item in obj.values():
            yield from secrets_in(item)


# --------------------------------------------------------------------------- YAML


# YAML that is small on disk and huge in memory is refused while composing, before any
# object is built: nesting deeper than MAX_YAML_DEPTH (Python would overflow its stack),
# more than MAX_YAML_NODES values (each costs the loader ~800 bytes: 10 MiB of "[1,1,...]"
# would take 4 GB), and aliases that together add more than MAX_ALIAS_NODES values (a
# 342-byte "billion laughs" expands to 10^9).  A real config is under 15 levels deep, has
# 7 values per simple target (20,000 targets are 140,000 values) and its anchors add hundreds.
MAX_YAML_DEPTH = 100
MAX_YAML_NODES = 200_000
MAX_ALIAS_NODES = 100_000


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of keeping the last,
    unhashable keys, deep nesting, alias bombs and values Python cannot hold."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        # every alias in document order, with where it was written
        self._aliases: list[tuple[yaml.Node, Any]] = []

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if node is not None:
                self._aliases.append((node, event.start_mark))
            return node
        self._depth += 1
        self._nodes += 1
        try:
            if self._nodes > MAX_YAML_NODES:
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_YAML_NODES} values; is this the right file?", event.start_mark
                )
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def check_aliases(self, root: yaml.Node) -> None:
        """Refuse aliases that expand the document past MAX_ALIAS_NODES or MAX_YAML_DEPTH."""
        sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, depth)
        added = 0
        for node, mark in self._aliases:
            size, depth = _expanded(node, sizes, mark)
            added += size
            if added > MAX_ALIAS_NODES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?);"
                    " write the repeated parts out or nest fewer aliases",
                    mark,
                )
        _, depth = _expanded(root, sizes, root.start_mark)
        if depth > MAX_YAML_DEPTH:
            # point at the alias that brings in the deepest value
            deepest = max(self._aliases, key=lambda alias: sizes[id(alias[0])][1], default=None)
            mark = deepest[1] if deepest else root.start_mark
            raise yaml.composer.ComposerError(
                None, None, f"aliases nest values more than {MAX_YAML_DEPTH} levels deep", mark
            )

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            # a 5,001-digit integer, a timestamp on the 13th month...
            problem = str(exc).split(";")[0]
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {problem}", node.start_mark
            ) from None


def _expanded(node: yaml.Node, sizes: dict[int, tuple[int, int]], mark: Any) -> tuple[int, int]:
    """(nodes, depth) of ``node`` with every alias expanded; memoized, without recursion."""
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        key = id(current)
        if key in sizes and not done:
            continue
        children = _children(current)
        if done:
            on_path.discard(key)
            size, depth = 1, 0
            for child in children:
                child_size, child_depth = sizes[id(child)]
                size += child_size
                depth = max(depth, child_depth)
            sizes[key] = (size, depth + 1)
            continue
        if key in on_path:
            continue
        on_path.add(key)
        stack.append((current, True))
        for child in children:
            if id(child) in on_path:
                raise yaml.composer.ComposerError(
                    None, None, "an alias refers to a value that contains it (a recursive value)", mark
                )
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(node)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be a plain value such as a name, not {describe(key)}", key_node.start_mark
            ) from None
        if key in result:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        result[key] = loader.construct_object(value_node)
    return result


StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)

_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, path: str, problems: list[str], env: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(f"{path}: environment variable {name} is not set")
            return ""

        return _ENV_RE.sub(repl, value)
    if isinstance(value, list):
        return [expand_env(v, f"{path}[{i}]", problems, env) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: expand_env(v, join_path(path, str(k)), problems, env) for k, v in value.items()}
    return value


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --------------------------------------------------------------------------- conversion

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class Converter:
    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}" if path else message)

    def convert(self, tp: Any, value: Any, path: str) -> Any:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if value is None:
                return None
            return self.convert(args[0], value, path)
        if origin is Literal:
            options = typing.get_args(tp)
            if value not in options:
                self.fail(path, f"must be one of {', '.join(map(str, options))}, got {value!r}")
                return options[0]
            return value
        if origin in (list, tuple):
            (item_tp, *_) = typing.get_args(tp)
            if not isinstance(value, list):
                self.fail(path, f"expected a list, got {describe(value)}")
                return ()
            return tuple(self.convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
        if origin is dict:
            key_tp, val_tp = typing.get_args(tp)
            if not isinstance(value, dict):
                self.fail(path, f"expected a mapping, got {describe(value)}")
                return {}
            return {
                self.convert(key_tp, k, path): self.convert(val_tp, v, join_path(path, str(k)))
                for k, v in value.items()
            }
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self.convert_dataclass(tp, value, path)
        if tp is Duration:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.fail(path, f"{Duration.EXPECTED}, got {describe(value)}")
                return Duration(0)
            try:
                if isinstance(value, str):
                    duration = Duration.parse(value)
                else:
                    duration = Duration.from_number(value, describe(value))
            except ValueError as exc:
                self.fail(path, str(exc))
                return Duration(0)
            problem = Duration.bounds_problem(_last_key(path), duration)
            if problem is not None:
                self.fail(path, problem)
            return duration
        if tp is Secret:
            if not isinstance(value, str):
                self.fail(path, f"expected a string, got {describe(value)} (quote it)")
                return Secret("")
            return Secret(value)
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(path, f"expected a number, got {describe(value)}")
                return 0.0
            return float(value)
        if tp in (str, int, bool):
            if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
                hint = " (quote it)" if tp is str and isinstance(value, (int, float)) else ""
                self.fail(path, f"expected {_TYPE_NAMES[tp]}, got {describe(value)}{hint}")
                return tp()
            return value
        raise TypeError(f"config schema uses unsupported type {tp!r} at {path}")

    def convert_dataclass(self, cls: type[Any], value: Any, path: str) -> Any:
        """One mapping into ``cls``, or None when any key has a problem (all are reported).

        Over 60 lines because its steps share one piece of state: the set of keys
        that already failed, so that unknown keys, ``*_file`` secrets, conversion,
        path checks and the cross-field ``check()`` each report a key once.
        """
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {describe(value)}")
            return None
        hints = _type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        secret_fields = {n for n in fields if is_secret(hints[n])}
        allowed = set(fields) | {f"{n}_file" for n in secret_fields}
        kwargs: dict[str, Any] = {}
        failed: set[str] = set()  # keys that already have a problem
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.fail(
                    join_path(path, str(key)),
                    f"unknown key (allowed: {', '.join(sorted(allowed))}){hint}",
                )
        for name, f in fields.items():
            key_path = join_path(path, name)
            if name in secret_fields and f"{name}_file" in value:
                if value.get(name) is not None:
                    self.fail(key_path, f"set {name} or {name}_file, not both")
                    failed.add(name)
                    continue
                secret = self.read_secret_file(value[f"{name}_file"], f"{key_path}_file")
                if secret is None:
                    failed.add(name)
                else:
                    kwargs[name] = secret
                continue
            if name in value:
                before = len(self.problems)
                kwargs[name] = self.convert(hints[name], value[name], key_path)
                if len(self.problems) != before:
                    failed.add(name)
                elif name.endswith("_file") and isinstance(kwargs[name], str) and kwargs[name]:
                    # file paths are relative to the config file, not to wherever the exporter starts
                    kwargs[name] = str(self.base_dir / kwargs[name])
                    # and read when the config loads: a wrong path is a config error naming
                    # the key, not a driver's error at the first scrape
                    problem = file_problem(Path(kwargs[name]))
                    if problem is not None:
                        self.fail(key_path, problem)
                        failed.add(name)
                        # check() still runs: it must not open a pipe or a device the path names
                        kwargs[name] = f.default if f.default is not dataclasses.MISSING else ""
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.fail(key_path, "missing required key")
                failed.add(name)
        try:
            obj = cls(**kwargs)
        except TypeError:
            return None  # a required key is missing: already reported
        except ValueError as exc:
            self.fail(path, str(exc))
            return None
        # Cross-field checks run even when some fields failed (with placeholder
        # values), so one round reports everything; their findings about keys
        # that already have a problem are dropped as duplicates.
        check = getattr(obj, "check", None)
        if callable(check):
            try:
                found = list(check())
            except Exception as exc:  # noqa: BLE001 - a check tripping over a placeholder
                # with placeholders in play the other problems say it all; otherwise say
                # what broke rather than print a traceback
                found = [] if failed else [("", f"cannot be checked: {type(exc).__name__}: {exc}")]
            for key, problem in found:
                if key.split(".")[0].split("[")[0] in failed:
                    continue
                self.fail(join_path(path, key) if key else path, problem)
        return None if failed else obj

    def read_secret_file(self, value: Any, path: str) -> Secret | None:
        if not isinstance(value, str) or not value:
            self.fail(path, f"expected a file path, got {describe(value)}")
            return None
        file = Path(value)
        if not file.is_absolute():
            file = self.base_dir / file
        try:
            return Secret(read_file(file, MAX_SECRET_BYTES).decode("utf-8").rstrip("\r\n"))
        except FileProblem as exc:
            self.fail(path, str(exc))
        except UnicodeDecodeError:
            self.fail(path, f"{str(file)!r} is not UTF-8 text")
        return None


_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    """A class's resolved annotations: costlier than converting one target, so once per class."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _last_key(path: str) -> str:
    """``redis[0].scrape_timeout`` -> ``scrape_timeout``."""
    return re.sub(r"(\[\d+\])+$", "", path.rsplit(".", 1)[-1])


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file (``cannot read '/x': No such file or directory``), or None.

    Only a regular file of at most MAX_CONFIG_BYTES passes: a named pipe would block
    whoever reads it later, and a device such as /dev/zero never ends.
    """
    try:
        # O_NONBLOCK: a named pipe must not hang the config check waiting for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return f"cannot read {str(path)!r}: {exc.strerror or exc}"
    try:
        problem = _not_regular(os.fstat(fd), MAX_CONFIG_BYTES)
    finally:
        os.close(fd)
    return f"cannot read {str(path)!r}: {problem}" if problem else None


# The largest config file (and any file a config names, such as custom_queries_file) read,
# and the largest secret file: a config is a few kilobytes, a secret a few dozen bytes.
MAX_CONFIG_BYTES = 10 * 1024 * 1024
MAX_SECRET_BYTES = 64 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileProblem(ValueError):
    """A file that cannot be read as config: the message names the file and why."""

    def __init__(self, path: Path, reason: str) -> None:
        self.reason = reason  # without the path: "it is a named pipe, not a regular file"
        super().__init__(f"cannot read {str(path)!r}: {reason}")


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


def _not_regular(st: os.stat_result, limit: int) -> str | None:
    for test, kind in _KINDS:
        if test(st.st_mode):
            return f"it is {kind}, not a regular file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > limit:
        return f"larger than {_size(limit)} ({st.st_size} bytes)"
    return None


def read_file(path: Path, limit: int) -> bytes:
    """A regular file's bytes, at most ``limit`` of them; anything else raises FileProblem.

    Never blocks on a named pipe and never reads a device: a config or secret path that
    points at a FIFO or /dev/zero is an error, not a hang or a memory blow-up.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise FileProblem(path, str(exc.strerror or exc)) from None
    try:
        problem = _not_regular(os.fstat(fd), limit)
        if problem is not None:
            raise FileProblem(path, problem)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # the file may grow after fstat
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise FileProblem(path, f"larger than {_size(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise FileProblem(path, str(exc.strerror or exc)) from None
    finally:
        os.close(fd)


def is_secret(tp: Any) -> bool:
    if tp is Secret:
        return True
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and Secret in typing.get_args(tp)


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML strictly; every problem is a ConfigError with line and column.

    Strict: no duplicate keys, no unhashable keys, at most MAX_CONFIG_BYTES of text,
    MAX_YAML_DEPTH levels, MAX_YAML_NODES values and MAX_ALIAS_NODES added by aliases.
    """
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(source, [f"larger than {_size(MAX_CONFIG_BYTES)}; is this the right file?"])
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        loader.check_aliases(node)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}invalid YAML: {problem}"]) from None
    except RecursionError:  # unreachable with the depth limit; never a traceback
        raise ConfigError(source, [f"invalid YAML: nested too deeply (at most {MAX_YAML_DEPTH} levels)"]) from None
    finally:
        loader.dispose()
