"""The email webhooks in the real exporter process, on the public ingest listener.

Postmark (basic auth, tests/fakes/email_webhooks/postmark.py) carries the generic cases:
events counted per type, every refusal by reason, replays counted once, a flood of random
tags adding no series, secrets kept out of /metrics and the log, reloads, and
``--check-config``.  Then each provider whose fake exists posts one valid signed batch and
one with a wrong signature, through the same listener.

Every request comes from 127.0.0.1, which the config trusts as a proxy: each test client is
a distinct ``X-Forwarded-For`` address with its own failure budget.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
import string
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peers.process import free_port, port_is_open, wait_until
from tests.fakes.email_webhooks import postmark as pm
from tests.helpers import ROOT, ExporterProcess, check_config, reference_problems, value, write_config

pytestmark = pytest.mark.timeout(120)

TYPES = {
    "welcome": ["welcome-email"],
    "password_reset": ["password-reset"],
    "newsletter": ["broadcasts"],  # a Postmark message stream
}
MAX_BODY = 32768
BURST = 5
REASONS = ("bad_signature", "stale", "too_large", "malformed", "rate_limited", "unavailable")


def webhook_section(**providers: Any) -> dict[str, Any]:
    return {
        "email_types": TYPES,
        "max_body_bytes": MAX_BODY,
        "max_seen_ids": 1000,
        # a bucket that never refills within a test: exactly BURST failures per client
        "failure_rate": 0.0001,
        "failure_burst": BURST,
        "max_clients": 100,
        "trusted_proxies": ["127.0.0.1/32"],
        **providers,
    }


@dataclass
class Hooks:
    """The exporter process, its ingest port and an HTTP session."""

    proc: ExporterProcess
    port: int
    http: aiohttp.ClientSession
    clients: Iterator[str] = field(default_factory=lambda: (f"198.51.{i // 256}.{i % 256}" for i in range(1, 65000)))

    def url(self, provider: str) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/v1/{provider}"

    async def post(
        self,
        provider: str,
        signed: tuple[Mapping[str, str], Any],
        *,
        client: str | None = None,
    ) -> tuple[int, str]:
        headers, body = signed
        sent = {**headers, "X-Forwarded-For": client or next(self.clients)}
        async with self.http.post(self.url(provider), data=body, headers=sent) as resp:
            return resp.status, await resp.text()

    async def metrics(self) -> str:
        async with self.http.get(f"http://127.0.0.1:{self.proc.port}/metrics?targets=none") as resp:
            assert resp.status == 200
            return await resp.text()


@contextmanager
def exporter_process(tmp_path: Path, config: Mapping[str, Any], *args: str) -> Iterator[tuple[ExporterProcess, int]]:
    """The exporter with the webhooks on ``email_webhooks.listen_address`` (no --rum.listen-address)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    section = {"listen_address": f"127.0.0.1:{port}", **config["email_webhooks"]}
    proc = ExporterProcess(tmp_path, {**config, "email_webhooks": section}, *args)
    try:
        proc.start()
        wait_until(lambda: port_is_open("127.0.0.1", port), timeout=15)
        yield proc, port
    finally:
        proc.stop()


@pytest.fixture
def postmark() -> pm.PostmarkSender:
    return pm.PostmarkSender()


@pytest.fixture
async def hooks(tmp_path: Path, postmark: pm.PostmarkSender) -> AsyncIterator[Hooks]:
    config = {"email_webhooks": webhook_section(postmark=postmark.config())}
    with exporter_process(tmp_path, config) as (proc, port):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:
            yield Hooks(proc, port, http)


def events(text: str, provider: str = "postmark") -> dict[tuple[str, str], float]:
    """(event, email_type) -> count, the non-zero ones."""
    found: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("email_webhook_events_total{") and f'provider="{provider}"' in line:
            labels, number = line.rsplit(" ", 1)
            if float(number):
                event = labels.split('event="')[1].split('"')[0]
                kind = labels.split('email_type="')[1].split('"')[0]
                found[(event, kind)] = float(number)
    return found


def refused(text: str, provider: str = "postmark") -> dict[str, float]:
    return {r: value(text, "email_webhook_refused_total", provider=provider, reason=r) or 0.0 for r in REASONS}


def webhook_series(text: str) -> list[str]:
    return [line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("email_webhook_")]


# --------------------------------------------------------------------------- Postmark: the generic cases


async def test_valid_postmark_events_are_counted_per_type(hooks: Hooks, postmark: pm.PostmarkSender) -> None:
    before = await hooks.metrics()
    assert events(before) == {}
    assert value(before, "email_webhook_requests_total", provider="postmark") == 0
    assert refused(before) == dict.fromkeys(REASONS, 0.0)

    sent: list[dict[str, Any]] = []
    for neutral in pm.EXAMPLES:
        for tags, stream in ((["welcome-email"], "outbound"), (["password-reset"], "outbound"), ([], "broadcasts")):
            body = pm.example(neutral, tags=tags, stream=stream)
            sent.append(body)
            status, text = await hooks.post("postmark", postmark.sign(pm.encode(body)))
            assert (status, text) == (200, "webhook accepted\n")
    # a tag no type names, and no tag on the default stream: other
    status, _ = await hooks.post("postmark", postmark.sign(pm.encode(pm.example("delivered", tags=["receipt"]))))
    assert status == 200
    # a SubscriptionChange that is not a manual unsubscribe is outside the vocabulary
    resubscribed = pm.payload("SubscriptionChange", tags=["welcome-email"], suppress=False)
    assert (await hooks.post("postmark", postmark.sign(pm.encode(resubscribed))))[0] == 200

    text = await hooks.metrics()
    expected = {(n, t): 1.0 for n in pm.EXAMPLES for t in ("welcome", "password_reset", "newsletter")}
    expected[("delivered", "other")] = 1.0
    assert events(text) == expected
    assert value(text, "email_webhook_requests_total", provider="postmark") == len(sent) + 2
    assert value(text, "email_webhook_events_ignored_total", provider="postmark") == 1
    assert value(text, "email_webhook_duplicates_total", provider="postmark") == 0
    assert value(text, "email_webhook_last_request_timestamp_seconds", provider="postmark") is not None
    # nothing a request carried reaches /metrics or the log: addresses, ids, tags, the password
    log = hooks.proc.log()
    for secret in (postmark.password, sent[0]["MessageID"], "john@example.com", "receipt"):
        assert secret not in text and secret not in log
    assert "Traceback" not in log
    # webhooks alone start the ingest listener; neither host warns about it
    assert "level=warn" not in log and "level=error" not in log, log


async def test_refusals_are_answered_and_counted_by_reason(hooks: Hooks, postmark: pm.PostmarkSender) -> None:
    good = pm.encode(pm.example("delivered", tags=["welcome-email"]))
    expected = dict.fromkeys(REASONS, 0)

    # wrong credentials: wrong password, wrong user, none at all
    for signed in (
        postmark.sign(good, password="not-the-password-at-all"),
        postmark.sign(good, username="someone"),
        ({"Content-Type": "application/json"}, good),
    ):
        status, text = await hooks.post("postmark", signed)
        assert (status, text) == (401, "webhook refused: bad signature or credentials\n")
    expected["bad_signature"] = 3

    # oversized: by Content-Length, and chunked with no length at all
    big = pm.encode({**pm.example("delivered"), "Details": "x" * MAX_BODY})
    assert (await hooks.post("postmark", postmark.sign(big)))[0] == 413

    async def chunks(total: int) -> AsyncIterator[bytes]:
        for _ in range(total // 1024):
            yield b"[" * 1024

    headers, _ = postmark.sign(b"")
    assert await hooks.post("postmark", (headers, chunks(4 * MAX_BODY))) == (413, "webhook refused: body too large\n")
    expected["too_large"] = 2

    # malformed: not JSON, not an object, not a Postmark event
    for body in (b"{", b"[]", b"\xff\xfe", pm.encode({"type": "email.delivered", "data": {}})):
        status, text = await hooks.post("postmark", postmark.sign(body))
        assert (status, text) == (400, "webhook refused: malformed\n")
    expected["malformed"] = 4

    # unknown provider: a provider not configured, a name that is none
    for name in ("sendgrid", "smtp", "postmark2"):
        status, text = await hooks.post(name, postmark.sign(good))
        assert (status, text) == (404, "webhook refused: no such provider configured\n")

    # a replayed body: 200 (so Postmark stops retrying), counted once
    assert (await hooks.post("postmark", postmark.sign(good)))[0] == 200
    assert (await hooks.post("postmark", postmark.sign(good)))[0] == 200

    # a flood of failures from one client: BURST refused by reason, then 429 unread
    statuses = [(await hooks.post("postmark", postmark.sign(b"{"), client="203.0.113.9"))[0] for _ in range(BURST + 3)]
    assert statuses == [400] * BURST + [429] * 3
    expected["malformed"] += BURST
    expected["rate_limited"] = 3

    text = await hooks.metrics()
    assert refused(text) == {reason: float(n) for reason, n in expected.items()}
    assert value(text, "email_webhook_refused_total", provider="unknown", reason="unknown_provider") == 3
    assert events(text) == {("delivered", "welcome"): 1.0}
    assert value(text, "email_webhook_duplicates_total", provider="postmark") == 1
    assert value(text, "email_webhook_requests_total", provider="postmark") == 2
    log = hooks.proc.log()
    assert "203.0.113.9" not in log and "198.51." not in log and "smtp" not in log and "Traceback" not in log


async def test_a_flood_of_random_tags_adds_no_series(hooks: Hooks, postmark: pm.PostmarkSender) -> None:
    # every series a Postmark event may legitimately use exists from the start
    assert (await hooks.post("postmark", postmark.sign(pm.encode(pm.example("delivered")))))[0] == 200
    baseline = webhook_series(await hooks.metrics())
    rng = random.Random(19)
    tags = ["".join(rng.choices(string.ascii_letters + string.digits, k=16)) for _ in range(1000)]
    streams = ["".join(rng.choices(string.ascii_lowercase, k=12)) for _ in range(1000)]
    kinds = list(pm.EXAMPLES)
    bodies = [pm.encode(pm.example(rng.choice(kinds), tags=[t], stream=s)) for t, s in zip(tags, streams, strict=True)]
    for start in range(0, len(bodies), 50):
        batch = await asyncio.gather(*(hooks.post("postmark", postmark.sign(b)) for b in bodies[start : start + 50]))
        assert {status for status, _ in batch} == {200}
    text = await hooks.metrics()
    assert sorted(webhook_series(text)) == sorted(baseline)
    assert sum(events(text).values()) == 1001
    assert {kind for _, kind in events(text)} == {"other"}
    log = hooks.proc.log()
    assert not any(t in text or t in log for t in tags[:100] + streams[:100])


async def test_reload_changes_types_and_credentials_and_keeps_the_counts(
    hooks: Hooks, postmark: pm.PostmarkSender
) -> None:
    assert (await hooks.post("postmark", postmark.sign(pm.encode(pm.example("delivered", tags=["receipt"])))))[0] == 200
    rotated = pm.PostmarkSender()
    section = webhook_section(postmark=rotated.config(), email_types={**TYPES, "receipt": ["receipt"]})
    section["listen_address"] = f"127.0.0.1:{hooks.port}"
    write_config(hooks.proc.config_path.parent, {"email_webhooks": section})
    status, answer = hooks.proc.post("/-/reload")
    assert status == 200, answer
    # the new password only; the new type counts from now
    assert (await hooks.post("postmark", postmark.sign(pm.encode(pm.example("delivered")))))[0] == 401
    assert (await hooks.post("postmark", rotated.sign(pm.encode(pm.example("delivered", tags=["receipt"])))))[0] == 200
    text = await hooks.metrics()
    assert events(text) == {("delivered", "other"): 1.0, ("delivered", "receipt"): 1.0}
    assert value(text, "email_webhook_events_total", provider="postmark", event="bounced", email_type="receipt") == 0

    # a broken section is refused whole, naming the key: the previous one keeps serving
    write_config(hooks.proc.config_path.parent, {"email_webhooks": {**section, "max_seen_ids": 0}})
    status, answer = hooks.proc.post("/-/reload")
    assert status == 500 and "email_webhooks.max_seen_ids" in answer
    assert (await hooks.post("postmark", rotated.sign(pm.encode(pm.example("opened")))))[0] == 200
    assert rotated.password not in hooks.proc.log() and postmark.password not in hooks.proc.log()


# --------------------------------------------------------------------------- one listener, --check-config


async def test_rum_and_webhooks_share_the_listener(tmp_path: Path, postmark: pm.PostmarkSender) -> None:
    port = free_port()
    config = {
        "rum": {"allowed_origins": ["https://shop.example.com"]},
        "email_webhooks": webhook_section(postmark=postmark.config()),
    }
    proc = ExporterProcess(tmp_path, config, "--rum.listen-address", f"127.0.0.1:{port}")
    try:
        proc.start()
        wait_until(lambda: port_is_open("127.0.0.1", port), timeout=15)
        async with aiohttp.ClientSession() as http:
            hooks = Hooks(proc, port, http)
            assert (await hooks.post("postmark", postmark.sign(pm.encode(pm.example("clicked")))))[0] == 200
            beacon = {"Origin": "https://shop.example.com", "Content-Type": "text/plain"}
            url = f"http://127.0.0.1:{port}/rum/v1/beacon"
            async with http.post(url, data=json.dumps({"v": 1, "page": "/", "view": True}), headers=beacon) as resp:
                assert resp.status == 204
            # the webhooks are not on the main listener
            async with http.post(f"http://127.0.0.1:{proc.port}/webhooks/v1/postmark", data=b"{}") as resp:
                assert resp.status in (404, 405)
            text = await hooks.metrics()
        assert value(text, "rum_beacons_accepted_total") == 1
        assert events(text) == {("clicked", "other"): 1.0}
    finally:
        proc.stop()
    # neither host warns that its listener is missing or elsewhere
    assert "level=warn" not in proc.log() and "level=error" not in proc.log(), proc.log()


def test_check_config_names_every_webhook_key(tmp_path: Path) -> None:
    section = {
        "listen_address": "nowhere",
        "email_types": {"Welcome": ["a"], "other": ["b"], "reset": [], "dup": ["a"]},
        "max_body_bytes": 0,
        "max_seen_ids": 0,
        "failure_rate": -1,
        "failure_burst": 0,
        "max_clients": 0,
        "trusted_proxies": ["10.0.0.0/33"],
        "colour": "blue",
        "postmark": {"username": "a:b", "password": "short"},
        "resend": {"signing_secret": "not-whsec"},
        "ses": {"region": "mars-1", "topic_arns": ["arn:aws:sns:eu-west-1:123456789012:t"]},
    }
    proc = check_config(write_config(tmp_path, {"email_webhooks": section}))
    assert proc.returncode == 1
    for key in (
        "email_webhooks.listen_address",
        "email_webhooks.email_types.Welcome",
        "email_webhooks.email_types.other",
        "email_webhooks.email_types.reset",
        "email_webhooks.email_types.dup[0]",
        "email_webhooks.max_body_bytes",
        "email_webhooks.max_seen_ids",
        "email_webhooks.failure_rate",
        "email_webhooks.failure_burst",
        "email_webhooks.max_clients",
        "email_webhooks.trusted_proxies[0]",
        "email_webhooks.colour",
        "email_webhooks.postmark.username",
        "email_webhooks.postmark.password",
        "email_webhooks.resend.signing_secret",
        "email_webhooks.ses.region",
    ):
        assert key in proc.stderr, (key, proc.stderr)
    assert "short" not in proc.stderr and "not-whsec" not in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for bad, key in (({}, "email_webhooks"), ("on", "email_webhooks"), ({"postmark": {}}, "email_webhooks.postmark")):
        proc = check_config(write_config(tmp_path, {"email_webhooks": bad}))
        assert proc.returncode == 1 and key in proc.stderr, proc.stderr


def test_check_config_refuses_two_addresses_for_the_one_ingest_listener(tmp_path: Path) -> None:
    hooks = {"postmark": {"username": "pm", "password": "a-long-enough-password"}}
    rum = {"allowed_origins": ["https://shop.example.com"], "listen_address": ":9848"}
    proc = check_config(write_config(tmp_path, {"rum": rum, "email_webhooks": {**hooks, "listen_address": ":9849"}}))
    assert proc.returncode == 1
    assert "email_webhooks.listen_address: :9849 is not rum.listen_address (:9848)" in proc.stderr
    # the same address, or none: fine
    proc = check_config(write_config(tmp_path, {"rum": rum, "email_webhooks": {**hooks, "listen_address": ":9848"}}))
    assert proc.returncode == 0, proc.stderr
    assert "email webhooks for postmark" in proc.stdout and "real user monitoring" in proc.stdout
    # webhooks alone on the main listener's address
    proc = check_config(write_config(tmp_path, {"email_webhooks": {**hooks, "listen_address": ":9847"}}))
    assert proc.returncode == 1 and "email_webhooks.listen_address: :9847 is --web.listen-address" in proc.stderr
    # webhooks alone: --rum.listen-address names their listener too
    proc = check_config(write_config(tmp_path, {"email_webhooks": hooks}), "--rum.listen-address", ":9847")
    assert proc.returncode == 1 and "--rum.listen-address: :9847 is --web.listen-address" in proc.stderr
    proc = check_config(write_config(tmp_path, {"email_webhooks": hooks}), "--rum.listen-address", ":9850")
    assert proc.returncode == 0, proc.stderr


CHECK_SCRIPT = """
import json, sys
from exporter.cli import main

code = main(["--config.file", sys.argv[1], "--check-config"])
loaded = sorted(m for m in sys.modules if m.startswith(("cryptography", "exporter.email_webhooks.")))
print(json.dumps({"code": code, "loaded": loaded}))
"""


def test_checking_a_config_imports_no_provider_and_no_cryptography(tmp_path: Path) -> None:
    section = {
        "postmark": {"username": "pm", "password": "a-long-enough-password"},
        "resend": {"signing_secret": "whsec_" + "QUJD" * 8},
        "ses": {"region": "eu-west-1", "topic_arns": ["arn:aws:sns:eu-west-1:123456789012:ses-events"]},
    }
    if importlib.util.find_spec("exporter.email_webhooks.sendgrid") is not None:
        section["sendgrid"] = {"verification_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}
    path = write_config(tmp_path, {"email_webhooks": section})
    proc = subprocess.run(
        [sys.executable, "-c", CHECK_SCRIPT, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["code"] == 0, result
    # the host (aiohttp's side) may load with the server module; no provider, no cryptography
    providers = [m for m in result["loaded"] if m.split(".")[-1] in (*section, "sendgrid", "mailgun")]
    assert providers == [], result
    assert not [m for m in result["loaded"] if m.startswith("cryptography")], result


def test_a_provider_module_that_fails_to_import_is_a_clear_start_error(tmp_path: Path) -> None:
    """The module is there (the config check passes) but its import fails: one error line, exit 1."""
    config = write_config(
        tmp_path,
        {
            "email_webhooks": {
                "listen_address": f"127.0.0.1:{free_port()}",
                "postmark": {"username": "pm", "password": "a-long-enough-password"},
            }
        },
    )
    code = (
        "import importlib.abc, importlib.machinery, runpy, sys\n"
        "class Broken(importlib.abc.Loader):\n"
        "    def create_module(self, spec): return None\n"
        "    def exec_module(self, module): raise ImportError('a broken install')\n"
        "class Finder(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'exporter.email_webhooks.postmark':\n"
        "            return importlib.machinery.ModuleSpec(name, Broken())\n"
        "sys.meta_path.insert(0, Finder())\n"
        f"sys.argv = ['exporter', '--config.file', {str(config)!r},"
        f" '--web.listen-address', '127.0.0.1:{free_port()}']\n"
        "runpy.run_module('exporter', run_name='__main__', alter_sys=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "email_webhooks.postmark: cannot load the provider: ImportError: a broken install" in proc.stderr
    assert "Traceback" not in proc.stderr and "a-long-enough-password" not in proc.stderr


# --------------------------------------------------------------------------- each provider through the listener


Signed = tuple[dict[str, str], bytes]
# two days ago: outside every provider's tolerance (SendGrid's, the longest, is a day)
LONG_AGO = time.time() - 2 * 86400


@dataclass
class Case:
    """One provider's config section and its requests, each signed as the provider signs them.

    ``valid``: counted; ``wrong``: signed with another key; ``stale``: signed two days ago (None
    where the provider signs no time); ``malformed``: verified, but not JSON; ``foreign``:
    another provider's valid request, posted here.
    """

    section: dict[str, Any]
    valid: list[Signed]
    wrong: Signed
    expected: dict[tuple[str, str], float]
    stale: Signed | None
    malformed: Signed
    foreign: Signed
    confirm: Signed | None = None


WELCOME = "welcome-email"
TWO = {("delivered", "welcome"): 1.0, ("opened", "welcome"): 1.0}


def foreign_postmark() -> Signed:
    """A valid Postmark request (its own credentials): foreign to every other endpoint."""
    return pm.PostmarkSender().sign(pm.encode(pm.example("delivered", tags=[WELCOME])))


def case_postmark() -> Case:
    sender, stranger = pm.PostmarkSender(), pm.PostmarkSender()
    valid = [sender.sign(pm.encode(pm.example(e, tags=[WELCOME]))) for e in ("delivered", "opened")]
    wrong = stranger.sign(pm.encode(pm.example("delivered", tags=[WELCOME])))
    from tests.fakes.email_webhooks import resend

    foreign = resend.ResendSender().sign(resend.encode(resend.payload("email.delivered", tags={"c": WELCOME})))
    return Case(sender.config(), valid, wrong, TWO, None, sender.sign(b"{"), foreign)


def case_resend() -> Case:
    from tests.fakes.email_webhooks import resend

    sender, stranger = resend.ResendSender(), resend.ResendSender()
    tags = {"category": WELCOME}
    valid = [sender.sign(resend.encode(resend.payload(e, tags=tags))) for e in ("email.delivered", "email.opened")]
    wrong = stranger.sign(resend.encode(resend.payload("email.delivered", tags=tags)))
    stale = sender.sign(resend.encode(resend.payload("email.delivered", tags=tags)), timestamp=LONG_AGO)
    return Case(sender.config(), valid, wrong, TWO, stale, sender.sign(b"{"), foreign_postmark())


def case_sendgrid() -> Case:
    from tests.fakes.email_webhooks import sendgrid

    sender, stranger = sendgrid.SendgridSender(), sendgrid.SendgridSender()
    batch = [sendgrid.example(e, tags=[WELCOME, "transactional"]) for e in ("delivered", "opened", "bounced")]
    valid = [sender.sign(sendgrid.encode(batch))]
    wrong = stranger.sign(sendgrid.encode([sendgrid.example("delivered", tags=[WELCOME])]))
    stale = sender.sign(sendgrid.encode([sendgrid.example("delivered", tags=[WELCOME])]), timestamp=LONG_AGO)
    expected = {**TWO, ("bounced", "welcome"): 1.0}
    return Case(sender.config(), valid, wrong, expected, stale, sender.sign(b"{"), foreign_postmark())


def case_mailgun() -> Case:
    from tests.fakes.email_webhooks import mailgun  # type: ignore[attr-defined,unused-ignore]

    sender, stranger = mailgun.MailgunSender(), mailgun.MailgunSender()
    valid = [sender.sign(mailgun.payload(e, tags=[WELCOME])) for e in ("delivered", "opened")]
    wrong = stranger.sign(mailgun.payload("delivered", tags=[WELCOME]))
    stale = sender.sign(mailgun.payload("delivered", tags=[WELCOME]), timestamp=LONG_AGO)
    # Mailgun's signature is in the body: a body that is not JSON carries none
    malformed = ({"Content-Type": "application/json"}, b"{")
    return Case(sender.config(), valid, wrong, TWO, stale, malformed, foreign_postmark())


def case_ses(sender: Any) -> Case:
    """SES through SNS: ``sender``'s certificate server must be running (its sns_url is in the config)."""
    from tests.fakes.email_webhooks import ses

    tags = {"email-type": WELCOME}
    valid = [sender.sign(ses.encode(ses.payload(e, tags=tags))) for e in ("Delivery", "Open")]
    envelope = sender.envelope(ses.encode(ses.payload("Delivery", tags=tags)).decode())
    envelope["Message"] = envelope["Message"].replace("Delivery", "Bounce")  # signed before: now tampered
    stale = sender.sign(ses.encode(ses.payload("Delivery", tags=tags)), timestamp=LONG_AGO)
    malformed = ({"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"}, b"{")
    return Case(
        sender.config(), valid, sender.post(envelope), TWO, stale, malformed, foreign_postmark(), sender.subscription()
    )


CASES = {"postmark": case_postmark, "resend": case_resend, "sendgrid": case_sendgrid, "mailgun": case_mailgun}


def ses_sender() -> Any:
    from tests.fakes.email_webhooks import ses

    return ses.SesSender()


async def run_case(hooks: Hooks, name: str, case: Case) -> str:
    for signed in case.valid:
        assert await hooks.post(name, signed) == (200, "webhook accepted\n"), name
    # a replay of a counted request: 200 (the provider stops retrying), counted once
    assert await hooks.post(name, case.valid[0]) == (200, "webhook accepted\n"), name
    refusals: list[tuple[Signed, int, str]] = [
        (case.wrong, 401, "webhook refused: bad signature or credentials\n"),
        (case.foreign, 401, "webhook refused: bad signature or credentials\n"),
        (case.malformed, 400, "webhook refused: malformed\n"),
        ((case.valid[0][0], b"[" * (MAX_BODY + 1)), 413, "webhook refused: body too large\n"),
    ]
    if case.stale is not None:
        refusals.append((case.stale, 400, "webhook refused: timestamp outside the tolerance\n"))
    for signed, status, text in refusals:
        assert await hooks.post(name, signed) == (status, text), (name, text)
    if case.confirm is not None:
        assert (await hooks.post(name, case.confirm))[0] == 200
    return await hooks.metrics()


@pytest.mark.parametrize("name", ["postmark", "resend", "sendgrid", "mailgun", "ses"])
async def test_each_provider_counts_its_signed_events_and_refuses_the_rest_by_reason(tmp_path: Path, name: str) -> None:
    """The provider's real-shaped requests, signed as it signs them, through the running exporter:
    valid ones counted per type, a replay counted once, and a wrong signature, another provider's
    format, a stale timestamp, malformed JSON and an oversized body refused and counted by reason."""
    async with aiohttp.ClientSession() as http:
        if name == "ses":
            sender = ses_sender()
            async with sender.cert_server():
                case = case_ses(sender)
                config = {"email_webhooks": webhook_section(ses=case.section)}
                with exporter_process(tmp_path, config) as (proc, port):
                    text = await run_case(Hooks(proc, port, http), name, case)
            assert sender.confirmations == ["ConfirmSubscription"]
            assert value(text, "email_webhook_sns_confirmations_total", result="confirmed") == 1
        else:
            case = CASES[name]()
            config = {"email_webhooks": webhook_section(**{name: case.section})}
            with exporter_process(tmp_path, config) as (proc, port):
                text = await run_case(Hooks(proc, port, http), name, case)
    assert events(text, name) == case.expected
    assert refused(text, name) == {
        **dict.fromkeys(REASONS, 0.0),
        "bad_signature": 2.0,
        "malformed": 1.0,
        "too_large": 1.0,
        "stale": 0.0 if case.stale is None else 1.0,
    }
    # the replayed request's events: SendGrid's batch by each event's id, the others by the request's
    replayed = len(case.expected) if name == "sendgrid" else 1
    assert value(text, "email_webhook_duplicates_total", provider=name) == replayed
    verified = len(case.valid) + 1 + (1 if case.confirm else 0)
    assert value(text, "email_webhook_requests_total", provider=name) == verified
    log = proc.log()
    assert WELCOME not in log and "Traceback" not in log
    for secret in case.section.values():
        if isinstance(secret, str) and len(secret) > 8 and name != "ses":
            assert secret not in text and secret not in log


async def test_every_webhook_family_is_documented(tmp_path: Path) -> None:
    """docs/metrics/email.md's email_webhook_* rows are what the exporter emits (every provider, ses for the
    confirmations one)."""
    cases = {name: make() for name, make in CASES.items()}
    async with aiohttp.ClientSession() as http:
        sender = ses_sender()
        async with sender.cert_server():
            cases["ses"] = case_ses(sender)
            section = webhook_section(**{name: case.section for name, case in cases.items()})
            with exporter_process(tmp_path, {"email_webhooks": section}) as (proc, port):
                hooks = Hooks(proc, port, http)
                for name, case in cases.items():
                    text = await run_case(hooks, name, case)
    for name, case in cases.items():
        assert events(text, name) == case.expected, name
    problems = reference_problems("email", text, prefixes=("email_webhook_",))
    assert problems == [], "\n".join(problems)
