"""The redactor: credentials stay out of logs, errors and pages in every form the exporter sends them.

The attack (issue 15, item 8): a provider's error body that echoes the request's
headers put ``Authorization: Basic <base64 of api:KEY>`` into the collection error,
hence into the log and the landing page; the base64 decodes to the key.
"""

from __future__ import annotations

import base64
import time

import pytest
from aiohttp import web

from exporter.redact import MASK, Redactor, encoded_forms, remember_sent
from tests.fakes.checks import capture, collection_errors, logged
from tests.fakes.email import FakeMailgun
from tests.helpers import exporter, scrape

KEY = "key-mailgun-secret-8c1d2e3f"
SHORT_KEY = "k3y-s7"  # shorter than MIN_SUBSTRING_LENGTH: never masked as a plain substring
DOMAIN = "mg.example.com"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leaked_forms(secret: str, user: str, text: str) -> list[str]:
    """Every form of ``secret`` the exporter sends that is found in ``text``."""
    token = b64(f"{user}:{secret}")
    forms = {
        "the secret": secret,
        "basic token": token,
        "basic token unpadded": token.rstrip("="),
        "basic token url-safe": base64.urlsafe_b64encode(f"{user}:{secret}".encode()).decode().rstrip("="),
    }
    if len(secret) >= 8:
        forms.update({f"base64 core {i}": core for i, core in enumerate(sorted(encoded_forms(secret)))})
    else:
        forms.pop("the secret")  # a 6-character value is left alone in ordinary text, by design
    return [name for name, form in forms.items() if form in text]


# --------------------------------------------------------------------------- the attack, end to end

# how services echo request headers in an error body, each within the 120 characters quoted
ECHOES = {
    "go-map": "bad request; headers: map[Authorization:[{auth}] Accept-Encoding:[gzip]]",
    "json-list": '{{"message": "bad request", "headers": {{"Authorization": ["{auth}"]}}}}',
    "pairs": '[["Authorization","{auth}"],["Accept","*/*"]]',
    "logfmt": "msg=rejected authorization={auth} status=400",
    "token-only": "invalid credentials {token} for domain",
    "unpadded": "credentials {bare} rejected",
}


class EchoingMailgun(FakeMailgun):
    """A Mailgun that answers 400 with the request's Authorization header echoed back in ``echo``'s format."""

    def __init__(self, api_key: str, echo: str) -> None:
        super().__init__(api_key, DOMAIN)
        self.echo = echo

    async def stats(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        token = auth.partition(" ")[2]
        body = self.echo.format(auth=auth, token=token, bare=token.rstrip("="))
        return web.Response(text=body, status=400)


def mailgun_config(url: str, key: str) -> dict[str, object]:
    item = {"name": "mail", "url": url, "domain": DOMAIN, "api_key": key, "refresh_interval": "0s"}
    return {"mailgun": [item]}


@pytest.fixture(params=sorted(ECHOES))
def echo(request: pytest.FixtureRequest) -> str:
    return ECHOES[request.param]


@pytest.mark.parametrize("key", [KEY, SHORT_KEY], ids=["key", "short-key"])
async def test_an_error_body_echoing_our_headers_leaks_no_form_of_the_key(
    key: str, echo: str, caplog: pytest.LogCaptureFixture
) -> None:
    capture(caplog)
    async with EchoingMailgun(key, echo).running() as fake, exporter(mailgun_config(fake.url, key)) as client:
        metrics = await scrape(client)
        landing = await scrape(client, "/")
    errors = collection_errors(caplog)
    # the echo really reached the error (the test would prove nothing otherwise) ...
    assert errors and "HTTP 400" in errors[-1], errors
    assert MASK in errors[-1], errors[-1]
    # ... and no form of the key is in the log, the metrics or the landing page
    for where, text in (("log", logged(caplog)), ("/metrics", metrics), ("landing page", landing)):
        assert leaked_forms(key, "api", text) == [], f"{where}: {text[:2000]}"


# --------------------------------------------------------------------------- the layers


def test_base64_of_a_secret_is_masked_whatever_the_user_name_and_padding() -> None:
    redactor = Redactor([KEY])
    for user in ("api", "a", "ab", "abcd", "user@example.com", ""):
        token = b64(f"{user}:{KEY}")
        for form in (token, token.rstrip("="), base64.urlsafe_b64encode(f"{user}:{KEY}".encode()).decode()):
            out = redactor.redact(f"echo {form} end")
            assert out == f"echo {MASK} end", (user, form, out)


def test_a_basic_token_is_masked_by_its_shape_even_for_an_unknown_secret() -> None:
    redactor = Redactor()
    token = b64("admin:pw12")  # short and not in the config: only the shape gives it away
    assert redactor.redact(f"got Basic {token} from you") == f"got Basic {MASK} from you"
    assert redactor.redact(f"got Basic {token[:10]}") == f"got Basic {MASK}"  # cut off by a quote limit
    # ordinary words after "Basic" are not base64 of user:password
    assert redactor.redact("Basic plan, Basic auth, Basic users") == "Basic plan, Basic auth, Basic users"


def test_sigv4_signatures_and_access_key_ids_are_masked() -> None:
    redactor = Redactor()
    header = (
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/ses/aws4_request,"
        " SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
    )
    presigned = (
        "https://email.us-east-1.amazonaws.com/?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404&X-Amz-Expires=60"
    )
    for text in (header, presigned, f'{{"error": "bad", "echo": "{header}"}}'):
        out = redactor.redact(text)
        assert "AKIAIOSFODNN7EXAMPLE" not in out, out
        assert "fe5f80f77d5fa3be" not in out and "aeeed9bbccd4d02e" not in out, out
    assert "SignatureDoesNotMatch" in redactor.redact("SES: SignatureDoesNotMatch on GetAccount")


def test_header_values_the_client_sent_are_remembered_whole() -> None:
    redactor = Redactor()
    token = b64(f"api:{SHORT_KEY}")
    remember_sent(redactor.redact, {"Authorization": f"Basic {token}", "Accept": "application/json"})
    assert redactor.redact(f"bare {token} and {token.rstrip('=')}") == f"bare {MASK} and {MASK}"
    assert redactor.redact("application/json") == "application/json"  # not a credential header
    remember_sent(redactor.redact, {"X-Postmark-Server-Token": "pm-token-123456"})
    assert redactor.redact("token pm-token-123456 rejected") == f"token {MASK} rejected"
    # a reload replaces the config's secrets, not what was sent
    redactor.update([])
    assert redactor.redact(token) == MASK
    # a plain function has no Redactor behind it: nothing to remember, nothing breaks
    remember_sent(lambda s: s, {"Authorization": "Bearer x"})


def test_short_secrets_are_not_masked_inside_ordinary_words() -> None:
    redactor = Redactor(["exp", SHORT_KEY])
    assert redactor.redact("the exporter exports") == "the exporter exports"
    assert redactor.redact("password=exp") == f"password={MASK}"


@pytest.mark.parametrize(
    "text",
    [
        "A" * 200_000,  # a base64 blob: every position once started a URL scheme (100 s)
        "Basic " + "a" * 100_000 + "=x",
        "a" * 100_000 + "://" + "b" * 1000,
        "x://" + "a:" * 20_000 + "@",
        "password=" * 20_000,
    ],
    ids=["blob", "basic", "scheme", "colons", "fields"],
)
def test_redaction_of_a_hostile_text_takes_linear_time(text: str) -> None:
    redactor = Redactor([KEY])
    started = time.perf_counter()
    redactor.redact(text)
    # a generous bound, not a benchmark: the quadratic scheme pattern took 100 s on the blob
    assert time.perf_counter() - started < 5
