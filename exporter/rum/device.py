"""The ``device`` label: one of four classes from the request's User-Agent.

The rules are the usual substring tests (MDN's "Browser detection using the user agent"):
``mobile`` for ``Mobi`` (``Mobile``, ``Mobile Safari``), ``iPhone``, ``iPod``, ``Windows
Phone`` and Android with ``Mobile``; ``tablet`` for ``iPad``, ``Tablet`` (Firefox for
Android tablets; not the ``Tablet PC`` of old Windows desktops), Android without ``Mobile``
(Chrome on tablets) and ``Kindle``/``Silk``; ``desktop`` for any other User-Agent;
``unknown`` when there is none.  ``Sec-CH-UA-Mobile: ?1`` (Chromium's client hint) makes it
``mobile`` whatever the User-Agent says.

iPadOS 13 and later Safari sends a desktop Mac User-Agent (``Macintosh; Intel Mac OS X``)
by default, and nothing on the server side tells it from a Mac: such iPads count as
``desktop``.

Deterministic and bounded: the result is always one of ``DEVICES``.  The User-Agent
itself is never stored or logged.
"""

from __future__ import annotations

__all__ = ["DEVICES", "device_class"]

DEVICES = ("mobile", "tablet", "desktop", "unknown")


def device_class(user_agent: str | None, ch_mobile: str | None = None) -> str:
    """``mobile``, ``tablet``, ``desktop`` or ``unknown`` for a request's headers."""
    if ch_mobile is not None and ch_mobile.strip() == "?1":
        return "mobile"
    if user_agent is None or not user_agent.strip():
        return "unknown"
    ua = user_agent
    # iPad first: its User-Agent also says "Mobile/15E148"
    if "iPad" in ua or ("Tablet" in ua and "Tablet PC" not in ua) or "Kindle" in ua or "Silk/" in ua:
        return "tablet"
    if "Mobi" in ua or "iPhone" in ua or "iPod" in ua or "Windows Phone" in ua:
        return "mobile"
    if "Android" in ua:
        return "tablet"  # Android without "Mobile": Chrome and Samsung Internet on tablets
    return "desktop"
