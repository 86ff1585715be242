"""Route patterns: the ``page`` label of every RUM series is a configured pattern or ``other``.

A pattern is a path of segments: a literal segment matches itself (case-sensitive, percent
escapes compared as written), ``:name`` matches exactly one non-empty segment and a final
``*`` matches the rest (zero or more segments).  The first matching pattern in config order
wins; a path no pattern matches is ``other``.  Query and fragment are stripped first, and a
trailing slash is insignificant (``/blog/`` is ``/blog``) except for ``/`` itself.

Matching splits on ``/`` and compares segment lists, so it costs O(patterns x segments) with
no regular expression to backtrack on a hostile path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["MAX_PATTERN_LENGTH", "MAX_ROUTES", "OTHER", "Routes", "normalized", "pattern_problem"]

# the page label of a path no pattern matches
OTHER = "other"
# patterns in one config: each is a label value on every RUM series, so they bound the series
MAX_ROUTES = 200
MAX_PATTERN_LENGTH = 256

_PARAM_RE = re.compile(r":[A-Za-z_][A-Za-z0-9_]*")
_PARAM = 0  # ":name": one non-empty segment
_REST = 1  # final "*": zero or more segments

Segment = str | int  # a literal segment, or _PARAM / _REST


def _segments(path: str) -> list[str]:
    """``/a/b/`` -> ``["a", "b"]``; ``/`` -> ``[]`` (the trailing slash dropped)."""
    parts = path.split("/")[1:]
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid route pattern, or None."""
    if not isinstance(pattern, str) or not pattern:
        return "must be a path pattern such as /product/:id"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"longer than {MAX_PATTERN_LENGTH} characters"
    if not pattern.startswith("/"):
        return f"must start with / (a path such as /product/:id), got {pattern!r}"
    if any(c in pattern for c in "?#"):
        return "must not contain ? or #: query and fragment are stripped before matching"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in pattern):
        return "must not contain spaces or control characters (percent-encode them as the browser does)"
    segments = _segments(pattern)
    for i, segment in enumerate(segments):
        if segment == "":
            return "has an empty segment (//)"
        if segment == "*":
            if i != len(segments) - 1:
                return "* may only be the last segment (it matches the rest of the path)"
        elif "*" in segment:
            return f"segment {segment!r}: * must be a whole segment"
        elif segment.startswith(":") and not _PARAM_RE.fullmatch(segment):
            return f"segment {segment!r}: a parameter is : followed by a name such as :id"
    return None


def normalized(pattern: str) -> str:
    """The pattern as matching sees it: ``/blog/`` and ``/blog`` are the same route."""
    return "/" + "/".join(_segments(pattern))


def _compile(pattern: str) -> tuple[Segment, ...]:
    compiled: list[Segment] = []
    for segment in _segments(pattern):
        if segment == "*":
            compiled.append(_REST)
        elif segment.startswith(":"):
            compiled.append(_PARAM)
        else:
            compiled.append(segment)
    return tuple(compiled)


def _matches(compiled: tuple[Segment, ...], parts: list[str]) -> bool:
    rest = bool(compiled) and compiled[-1] == _REST
    fixed = compiled[:-1] if rest else compiled
    if len(parts) < len(fixed) or (not rest and len(parts) != len(fixed)):
        return False
    for want, got in zip(fixed, parts, strict=False):
        if want == _PARAM:
            if not got:
                return False
        elif want != got:
            return False
    return True


class Routes:
    """The configured patterns, compiled once; ``match`` returns the pattern text or ``other``."""

    def __init__(self, patterns: Sequence[str]) -> None:
        for pattern in patterns:
            problem = pattern_problem(pattern)
            if problem is not None:
                raise ValueError(f"route {pattern!r}: {problem}")
        if len(patterns) > MAX_ROUTES:
            raise ValueError(f"at most {MAX_ROUTES} routes, got {len(patterns)}")
        self.patterns: tuple[str, ...] = tuple(patterns)
        self._compiled = tuple((_compile(p), p) for p in self.patterns)

    def __len__(self) -> int:
        return len(self.patterns)

    def labels(self) -> tuple[str, ...]:
        """Every page label ``match`` can return: the patterns and ``other``."""
        return (*self.patterns, OTHER)

    def match(self, path: str) -> str:
        """The first pattern matching ``path`` (query and fragment ignored), else ``other``.

        ``path`` starts with ``/`` (the beacon parser refuses anything else); anything
        else is ``other``.
        """
        for mark in "?#":
            cut = path.find(mark)
            if cut >= 0:
                path = path[:cut]
        if not path.startswith("/"):
            return OTHER
        parts = _segments(path)
        for compiled, pattern in self._compiled:
            if _matches(compiled, parts):
                return pattern
        return OTHER
