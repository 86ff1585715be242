"""Prometheus-style label matchers: ``alertname="RedisDown"``, ``target=~"cache.*"``.

The four operators of Alertmanager's routes and silences (``=``, ``!=``, ``=~``,
``!~``); regexes are anchored at both ends, as in Prometheus, so ``cache.*`` does
not match ``my-cache-1``. A label the alert does not carry has the value ``""``,
so ``team!="db"`` matches an alert without a team label, again as in Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

_MATCHER_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    pattern: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``name op "value"`` (the value may also be written bare); ValueError says what is wrong."""
        match = _MATCHER_RE.match(text)
        if match is None:
            raise ValueError(
                f"invalid matcher {text!r}: expected label, an operator (=, !=, =~, !~) and a value,"
                ' such as alertname="RedisDown" or target=~"cache.*"'
            )
        name, op, raw = match.groups()
        if raw.startswith('"'):
            problem = 'the value must be one double-quoted string (write \\" for a quote inside it)'
            try:
                # a Go-style double-quoted string; JSON's escapes are the same for what matters here
                value = json.loads(raw)
            except ValueError:
                raise ValueError(f"invalid matcher {text!r}: {problem}") from None
            if not isinstance(value, str):
                raise ValueError(f"invalid matcher {text!r}: {problem}")
        else:
            if any(c in raw for c in "\"'{},"):
                raise ValueError(f'invalid matcher {text!r}: quote the value, e.g. {name}{op}"..."')
            value = raw
        pattern = None
        if op in ("=~", "!~"):
            try:
                pattern = re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex in matcher {text!r}: {exc}") from None
        return cls(name, op, value, pattern)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value)}"
