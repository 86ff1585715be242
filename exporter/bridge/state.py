"""What each component should show, from the alerts seen so far. Pure: no I/O, no clock.

Per component the bridge keeps the firing alerts that match it (by fingerprint,
with the status their severity maps to). The component's desired status is the
worst of them, operational when none fires. Three rules keep the page calm:

* **Idempotent.** A notification changes state only through the alerts it
  carries, so the same notification twice (two clustered Alertmanagers both
  sending, a resend after a timeout) changes nothing, and the sync worker calls
  the provider only when the target differs from what it last applied.
* **No resurrection.** A resolved alert leaves a tombstone (its fingerprint and
  ``startsAt``); a late copy of the old firing notification carries the same
  ``startsAt`` and is ignored, while a new firing of the same alert has a new one.
* **No early end.** The other way round, a late resolve of an earlier instance
  (an Alertmanager replica sending the previous incident's resolve after the
  alert fired again) carries an older ``startsAt`` than the firing one and is
  ignored: the component stays down until the instance that fires now resolves.
* **Flap damping.** Getting worse is shown at once; getting better is shown at
  most once per ``min_flap_interval``, so within that interval a component goes
  down and back up at most once. A held improvement is applied when the
  interval has passed (:meth:`ComponentState.target` says when to look again).
  The first recovery after an outage is never delayed: a single short outage
  shows as short as it was.
* **Bounded.** At most :data:`MAX_FIRING` firing alerts are kept per component: one
  more evicts the least severe, least recently notified tenth (the new one too if
  it is among them), so the worst status, which is what the page shows, never
  changes by an eviction; ``stack_exporter_bridge_firing_alerts_dropped_total``
  counts them.  An evicted alert that still fires comes back with Alertmanager's
  next repeat.  Resolved fingerprints are capped the same way (:data:`MAX_TOMBSTONES`).
* **Forgetting (optional).** Alertmanager sends no resolved notification for an
  alert silenced while it fires, and one lost while the bridge was down is not
  sent again; with ``forget_after`` set, a firing alert Alertmanager has not
  repeated within it is dropped (its ``repeat_interval`` must be well below).

Until the bridge has heard of a component (a notification with an alert that
matches it) it does not touch it: after a restart it cannot know whether the
component is down, and setting it operational could hide a real outage until
Alertmanager's next repeat.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from exporter.bridge.config import BridgeConfig, ComponentConfig, SeverityEffect
from exporter.bridge.matchers import Matcher
from exporter.bridge.payload import Alert
from exporter.bridge.providers.base import COMPONENT_STATUSES, ComponentStatus

Status = ComponentStatus
STATUSES = COMPONENT_STATUSES
RANK: Mapping[str, int] = {s: i for i, s in enumerate(STATUSES)}
OPERATIONAL: Status = "operational"

# Resolved fingerprints remembered per component: enough for every alert of a
# large outage, small enough that a flood cannot grow memory without bound.
MAX_TOMBSTONES = 2000
# Firing alerts remembered per component: a real outage fires far fewer; a flood of
# distinct fingerprints (a label with a request id in it) must not grow memory without bound.
MAX_FIRING = 2000


def worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=RANK.__getitem__, default=OPERATIONAL)


def _earlier(starts_at: str, than: str) -> bool:
    """True when ``starts_at`` is an earlier instant than ``than`` (Alertmanager's RFC 3339 times).

    Either one unreadable: False, so the resolve is taken as before (no alert is kept firing
    on a timestamp the bridge cannot read).
    """
    try:
        return datetime.fromisoformat(starts_at) < datetime.fromisoformat(than)
    except (ValueError, TypeError):
        return False


def _as_status(effect: SeverityEffect) -> Status | None:
    return None if effect == "none" else effect


@dataclass
class ComponentState:
    config: ComponentConfig
    matchers: tuple[Matcher, ...]
    effects: Mapping[str, SeverityEffect]
    # fingerprint -> (status, startsAt, when last notified)
    firing: dict[str, tuple[Status, str, float]] = field(default_factory=dict)
    # how many of them want each status, so desired() needs no scan of every alert (a
    # notification with thousands of alerts would otherwise cost alerts x kept alerts)
    by_status: Counter[Status] = field(default_factory=Counter)
    resolved: dict[str, str] = field(default_factory=dict)  # fingerprint -> startsAt of the resolved instance
    dropped: int = 0  # firing alerts evicted because MAX_FIRING were already kept
    known: bool = False  # a matching alert has been seen since the bridge started
    down_since: float | None = None  # when the desired status left operational ({since} in incidents)
    incident_since: float | None = None  # the down_since of the open incident, for its resolution text

    # what the sync worker has done
    applied: Status | None = None  # the status the provider last accepted; None before the first
    last_improved_at: float | None = None
    incident_id: str | None = None
    last_sync_at: float | None = None
    attempts: int = 0  # consecutive failed attempts for the current target
    next_attempt_at: float = 0.0
    stuck: tuple[Status, bool] | None = None  # a (target, incident) the provider refused for good

    @property
    def name(self) -> str:
        return self.config.name

    def matches(self, alert: Alert) -> bool:
        return all(m.matches(alert.labels) for m in self.matchers)

    def desired(self) -> Status:
        return worst(status for status, count in self.by_status.items() if count > 0)

    def observe(self, alert: Alert, now: float) -> bool:
        """Take one matching alert into account; True if the desired status changed."""
        before = self.desired()
        self._observe(alert, now)
        return self._changed(before, now)

    def forget(self, now: float, after: float) -> float | None:
        """Drop firing alerts not notified within ``after`` seconds; when the next would go (None: none left)."""
        before = self.desired()
        for fingerprint, (_, _, seen) in list(self.firing.items()):
            if now - seen >= after:
                self._unset(fingerprint)
        self._changed(before, now)
        return min((seen + after for _, _, seen in self.firing.values()), default=None)

    def _changed(self, before: Status, now: float) -> bool:
        after = self.desired()
        if after == before:
            return False
        if after == OPERATIONAL:
            self.down_since = None
        elif before == OPERATIONAL:
            self.down_since = now
        return True

    def _observe(self, alert: Alert, now: float) -> None:
        self.known = True
        fingerprint = alert.fingerprint
        if alert.status == "resolved":
            current = self.firing.get(fingerprint)
            if current is not None and _earlier(alert.starts_at, current[1]):
                return  # the resolve of an earlier instance, late: the one firing now goes on
            self._unset(fingerprint)
            self.resolved.pop(fingerprint, None)
            self.resolved[fingerprint] = alert.starts_at
            if len(self.resolved) > MAX_TOMBSTONES:
                del self.resolved[next(iter(self.resolved))]
        elif self.resolved.get(fingerprint) != alert.starts_at:
            effect = _as_status(self.effects.get(alert.labels.get("severity", ""), "none"))
            if effect is None:
                self._unset(fingerprint)
            else:
                self._set(fingerprint, (effect, alert.starts_at, now))
                self.resolved.pop(fingerprint, None)
                if len(self.firing) > MAX_FIRING:
                    self._evict()

    def _evict(self) -> None:
        """Drop the least severe, least recently notified tenth: the worst status stays as it was.

        A tenth at once, not one per new alert, so a flood costs one sort per
        ``MAX_FIRING // 10`` alerts rather than a scan of every kept alert per alert.
        """
        by_weight = sorted(self.firing, key=lambda fp: (RANK[self.firing[fp][0]], self.firing[fp][2]))
        for fingerprint in by_weight[: len(self.firing) - (MAX_FIRING - MAX_FIRING // 10)]:
            self._unset(fingerprint)
            self.dropped += 1

    def _set(self, fingerprint: str, entry: tuple[Status, str, float]) -> None:
        self._unset(fingerprint)
        self.firing[fingerprint] = entry
        self.by_status[entry[0]] += 1

    def _unset(self, fingerprint: str) -> None:
        old = self.firing.pop(fingerprint, None)
        if old is not None:
            self.by_status[old[0]] -= 1

    def target(self, now: float, min_flap_interval: float) -> tuple[Status | None, float | None]:
        """(the status to show now, or None to leave the component alone; when to look again if held)."""
        if not self.known:
            return None, None
        desired = self.desired()
        if self.applied is None or RANK[desired] >= RANK[self.applied]:
            return desired, None
        if self.last_improved_at is not None and now - self.last_improved_at < min_flap_interval:
            return self.applied, self.last_improved_at + min_flap_interval
        return desired, None

    def wants_incident(self, target: Status) -> bool:
        return target != OPERATIONAL

    def pending(self, incidents: bool) -> bool:
        """True while the page does not show what the alerts say (held improvements included)."""
        if not self.known:
            return False
        desired = self.desired()
        if self.applied != desired:
            return True
        return incidents and (self.incident_id is not None) != self.wants_incident(desired)

    def applied_ok(self, status: Status, now: float) -> None:
        if self.applied is not None and RANK[status] < RANK[self.applied]:
            self.last_improved_at = now
        self.applied = status
        self.last_sync_at = now


@dataclass
class Observation:
    alerts: int = 0
    unmatched: int = 0
    changed: list[str] = field(default_factory=list)  # names of components whose desired status changed
    unmatched_names: set[str] = field(default_factory=set)  # alertnames of the unmatched, for the log


class BridgeState:
    """Every configured component's state, in config order."""

    def __init__(self, config: BridgeConfig, previous: BridgeState | None = None) -> None:
        self.components: dict[str, ComponentState] = {}
        old = previous.components if previous is not None else {}
        for component in config.components:
            state = ComponentState(component, component.matchers(), config.effects(component))
            kept = old.get(component.name)
            if kept is not None and kept.config.id == component.id:
                # a reload keeps what the bridge knows of an unchanged page component;
                # new matchers or severities apply to the alerts that arrive from now on
                for name in ("firing", "by_status", "resolved", "dropped", "known", "down_since", "applied"):
                    setattr(state, name, getattr(kept, name))
                for name in ("last_improved_at", "incident_id", "incident_since", "last_sync_at"):
                    setattr(state, name, getattr(kept, name))
            self.components[component.name] = state

    def observe(self, alerts: Sequence[Alert], now: float) -> Observation:
        result = Observation(alerts=len(alerts))
        for alert in alerts:
            hit = False
            for state in self.components.values():
                if state.matches(alert):
                    hit = True
                    if state.observe(alert, now) and state.name not in result.changed:
                        result.changed.append(state.name)
            if not hit:
                result.unmatched += 1
                result.unmatched_names.add(alert.labels.get("alertname", ""))
        return result
