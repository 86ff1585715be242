"""The bottom floor of the config: value types, the URL check, the strict YAML loader
and the converter that turns YAML into the frozen dataclasses every source declares.

It imports nothing of the exporter's, so collectors (which declare their target
classes with these types) and the loader that knows every source (``config.py``)
both stand on it without a cycle.
"""

from __future__ import annotations

import dataclasses
import difflib
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
    "ConfigError",
    "Converter",
    "Duration",
    "Secret",
    "StrictLoader",
    "TargetConfig",
    "check_url",
    "describe",
    "expand_env",
    "file_problem",
    "join_path",
    "load_yaml",
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
        return cls(total)

    @classmethod
    def from_number(cls, value: float, shown: str) -> Duration:
        """A bare number (``shown`` as the config wrote it): only 0 is a duration."""
        if value == 0:
            return cls(0.0)
        raise ValueError(f"{cls.EXPECTED}, got {shown} without a unit (for seconds write {value:g}s)")

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


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of keeping the last."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
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
                    return Duration.parse(value)
                return Duration.from_number(value, describe(value))
            except ValueError as exc:
                self.fail(path, str(exc))
                return Duration(0)
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
        hints = typing.get_type_hints(cls)
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
            return Secret(file.read_text(encoding="utf-8").rstrip("\r\n"))
        except OSError as exc:
            self.fail(path, f"cannot read {str(file)!r}: {exc.strerror or exc}")
        except UnicodeDecodeError:
            self.fail(path, f"{str(file)!r} is not UTF-8 text")
        return None


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file (``cannot read '/x': No such file or directory``), or None."""
    try:
        # O_NONBLOCK: a named pipe must not hang the config check waiting for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return f"cannot read {str(path)!r}: {exc.strerror or exc}"
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            return f"cannot read {str(path)!r}: it is a directory"
    finally:
        os.close(fd)
    return None


def is_secret(tp: Any) -> bool:
    if tp is Secret:
        return True
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and Secret in typing.get_args(tp)


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML strictly (no duplicate keys); a syntax error is a ConfigError with line and column."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}invalid YAML: {problem}"]) from None
