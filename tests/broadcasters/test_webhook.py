"""Webhook: a subscriber's own server receives signed JSON it can verify; failures retry or stop."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broadcasters import DeliveryError, Deps
from broadcasters.webhook import (
    MAX_RETRY_AFTER,
    Webhook,
    open_targets,
    parse_retry_after,
    sign,
    verify,
)
from status.clock import ManualClock
from status.config import Config, ConfigError, load_config_text
from status.model import Event
from tests.conftest import TEST_CONFIG
from tests.fakes.upstream import serve

pytestmark = pytest.mark.anyio

AT = datetime(2026, 11, 23, 3, 30, tzinfo=UTC)  # 10:30 WIB
SECRET = "newsroom-shared-hmac-key-0123456789"
ENVIRON = {"SIARAN_WEBHOOK_NEWSROOM": SECRET}
HOSTILE = "<b>&\"'"


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Newsroom:
    """A subscriber's receiver. The test thread scripts `answers`; the server thread records."""

    url: str = ""
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    hang_for: float = 0.0
    got: list[Received] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.got.append(Received(dict(request.headers), await request.body()))
            if self.hang_for:
                await asyncio.sleep(self.hang_for)
            status, headers = self.answers.pop(0) if self.answers else (200, {})
            return Response("", status, headers)

        return Starlette(routes=[Route("/hooks/siaran", hook, methods=["POST"])])


@pytest.fixture
def newsroom() -> Iterator[Newsroom]:
    receiver = Newsroom()
    with serve(receiver.app()) as base:
        receiver.url = f"{base}/hooks/siaran"
        yield receiver


@pytest.fixture
def config() -> Config:
    return load_config_text(TEST_CONFIG, "t.toml")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def deps_for(
    http: httpx.AsyncClient,
    config: Config,
    *,
    environ: dict[str, str] | None = None,
    allow_private: bool = True,
) -> Deps:
    environ = ENVIRON if environ is None else environ
    return Deps(ManualClock(AT), http, config, environ, allow_private_targets=allow_private)


def table(url: str = "https://hooks.example.id/siaran", **overrides: Any) -> dict[str, Any]:
    return {"id": "newsroom", "url": url, "secret_env": "SIARAN_WEBHOOK_NEWSROOM", **overrides}


@asynccontextmanager
async def webhook(deps: Deps, **overrides: Any) -> AsyncIterator[Webhook]:
    async with open_targets({"webhook": [table(**overrides)]}, deps) as targets:
        (hook,) = targets
        yield hook


def medan_outage(
    name: str = "Loket e-Meterai tutup", kind: str = "incident.created", event_id: int = 7
) -> Event:
    incident = {
        "id": "abc123def456",
        "name": name,
        "status": "investigating",
        "impact": "major",
        "shortlink": "https://status.example.id/incidents/abc123def456",
        "incident_updates": [{"body": name, "status": "investigating"}],
    }
    changes = [
        {
            "id": "kcu-medan",
            "name": "KCU Medan",
            "old_status": "operational",
            "new_status": "major_outage",
        }
    ]
    return Event(
        event_id,
        kind,
        AT,
        "abc123def456",
        ("kcu-medan",),
        {"incident": incident, "component_changes": changes},
    )


def queue_reading() -> Event:
    return Event(8, "queues.updated", AT, None, ("kcu-medan",), {"branches": ["kcu-medan"]})


# -- what the subscriber receives ---------------------------------------------------------


async def test_the_body_has_the_documented_shape(http: httpx.AsyncClient, config: Config) -> None:
    async with webhook(deps_for(http, config)) as hook:
        message = hook.render(medan_outage())
    assert message.target == "webhook:newsroom"
    assert message.body == (
        '{"id":7,"kind":"incident.created","created_at":"2026-11-23T03:30:00.000Z",'
        '"incident":{"id":"abc123def456","name":"Loket e-Meterai tutup","status":"investigating",'
        '"impact":"major","shortlink":"https://status.example.id/incidents/abc123def456",'
        '"incident_updates":[{"body":"Loket e-Meterai tutup","status":"investigating"}]},'
        '"component_changes":[{"id":"kcu-medan","name":"KCU Medan",'
        '"old_status":"operational","new_status":"major_outage"}],'
        '"component_ids":["kcu-medan"],'
        '"page":{"name":"Status e-Meterai","url":"https://status.example.id"}}'
    )


async def test_an_event_without_an_incident_sends_null(
    http: httpx.AsyncClient, config: Config
) -> None:
    async with webhook(deps_for(http, config), kinds=["queues.updated"]) as hook:
        body = json.loads(hook.render(queue_reading()).body)
    assert body["incident"] is None
    assert body["component_changes"] == []
    assert body["component_ids"] == ["kcu-medan"]


async def test_hostile_staff_text_stays_verbatim_in_the_json(
    http: httpx.AsyncClient, config: Config
) -> None:
    async with webhook(deps_for(http, config)) as hook:
        body = hook.render(medan_outage(f"{HOSTILE} — Medan\nbaris palsu")).body
    assert '"name":"<b>&\\"\' — Medan\\nbaris palsu"' in body  # JSON escapes only; no &lt;
    assert "\n" not in body
    assert json.loads(body)["incident"]["name"] == f"{HOSTILE} — Medan\nbaris palsu"


async def test_a_lone_surrogate_in_staff_text_still_sends_valid_utf8(
    http: httpx.AsyncClient, config: Config, newsroom: Newsroom
) -> None:
    async with webhook(deps_for(http, config), url=newsroom.url) as hook:
        await hook.deliver(hook.render(medan_outage("tutup \ud800")), None)
    (got,) = newsroom.got
    assert json.loads(got.body.decode("utf-8"))["incident"]["name"] == "tutup \ud800"


async def test_the_receiver_gets_the_exact_body_and_a_signature_it_accepts(
    http: httpx.AsyncClient, config: Config, newsroom: Newsroom
) -> None:
    async with webhook(deps_for(http, config), url=newsroom.url) as hook:
        message = hook.render(medan_outage(HOSTILE))
        assert await hook.deliver(message, None) is None
    (got,) = newsroom.got
    assert got.body == message.body.encode("utf-8")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == "siaran-webhook"
    assert got.headers["x-siaran-event"] == "incident.created"
    assert got.headers["x-siaran-delivery"] == "7"
    assert got.headers["x-siaran-timestamp"] == "1795404600"  # AT in unix seconds
    signature = got.headers["x-siaran-signature"]
    assert signature.startswith("sha256=")
    assert len(signature) == len("sha256=") + 64
    received_at = AT + timedelta(seconds=2)
    assert verify(SECRET.encode(), got.body, "1795404600", signature, received_at)


async def test_a_wrong_key_a_tampered_body_or_a_stale_timestamp_is_refused(
    http: httpx.AsyncClient, config: Config, newsroom: Newsroom
) -> None:
    async with webhook(deps_for(http, config), url=newsroom.url) as hook:
        await hook.deliver(hook.render(medan_outage()), None)
    (got,) = newsroom.got
    ts, signature = got.headers["x-siaran-timestamp"], got.headers["x-siaran-signature"]
    tampered = got.body.replace(b"major_outage", b"operational")
    assert tampered != got.body
    assert not verify(b"someone-else's-key-0123456789", got.body, ts, signature, AT)
    assert not verify(SECRET.encode(), tampered, ts, signature, AT)
    assert not verify(SECRET.encode(), got.body, str(int(ts) + 1), signature, AT)
    assert not verify(SECRET.encode(), got.body, ts, signature, AT + timedelta(minutes=6))
    assert verify(SECRET.encode(), got.body, ts, signature, AT + timedelta(minutes=4))


@pytest.mark.parametrize(
    ("timestamp", "signature", "now", "accepted"),
    [
        ("1795404600", "good", AT, True),
        ("1795404600", "good", AT - timedelta(minutes=5), True),
        ("1795404600", "good", AT - timedelta(minutes=5, seconds=1), False),  # from the future
        ("1795404600", "good", AT + timedelta(minutes=5, seconds=1), False),  # replayed later
        ("1795404600", "", AT, False),
        ("1795404600", "sha1=0000", AT, False),
        ("1795404600", "sha256=ünïcode", AT, False),
        ("1795404600.0", "good", AT, False),
        ("-1795404600", "good", AT, False),
        ("١٧٩٥٤٠٤٦٠٠", "good", AT, False),  # Arabic-Indic digits pass str.isdigit()
        ("9" * 5000, "good", AT, False),
    ],
)
def test_verify_refuses_anything_but_a_fresh_exact_signature(
    timestamp: str, signature: str, now: datetime, accepted: bool
) -> None:
    body = b'{"id":7}'
    good = sign(SECRET.encode(), body.decode(), AT)["x-siaran-signature"]
    given = good if signature == "good" else signature
    assert verify(SECRET.encode(), body, timestamp, given, now) is accepted


# -- what each answer means ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "retry_after"),
    [
        (404, {}, True, None),
        (410, {}, True, None),
        (400, {}, True, None),
        (401, {}, True, None),
        (301, {"location": "http://10.0.0.5/"}, True, None),
        (408, {}, False, None),
        (429, {"retry-after": "30"}, False, timedelta(seconds=30)),
        (
            429,
            {"retry-after": format_datetime(AT + timedelta(minutes=2), usegmt=True)},
            False,
            timedelta(minutes=2),
        ),
        (429, {}, False, None),
        (503, {"retry-after": "5"}, False, timedelta(seconds=5)),
        (500, {}, False, None),
        (502, {"retry-after": "5"}, False, None),
    ],
)
async def test_each_answer_maps_to_retry_or_stop(
    http: httpx.AsyncClient,
    config: Config,
    newsroom: Newsroom,
    status: int,
    headers: dict[str, str],
    permanent: bool,
    retry_after: timedelta | None,
) -> None:
    newsroom.answers.append((status, headers))
    async with webhook(deps_for(http, config), url=newsroom.url) as hook:
        with pytest.raises(DeliveryError) as caught:
            await hook.deliver(hook.render(medan_outage()), None)
    assert (caught.value.permanent, caught.value.retry_after) == (permanent, retry_after)
    assert str(status) in str(caught.value)
    assert newsroom.url not in str(caught.value)  # a hook URL often carries a token
    assert len(newsroom.got) == 1  # the redirect was not followed


async def test_a_receiver_that_hangs_is_retried_after_the_timeout(
    http: httpx.AsyncClient, config: Config, newsroom: Newsroom
) -> None:
    newsroom.hang_for = 3.0
    async with webhook(deps_for(http, config), url=newsroom.url, timeout="300ms") as hook:
        started = time.monotonic()
        with pytest.raises(DeliveryError, match=r"no answer within") as caught:
            await hook.deliver(hook.render(medan_outage()), None)
    assert time.monotonic() - started < 2.0
    assert not caught.value.permanent
    assert caught.value.retry_after is None


async def test_a_receiver_that_is_down_is_retried(http: httpx.AsyncClient, config: Config) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with webhook(deps_for(http, config), url=f"http://127.0.0.1:{port}/hook") as hook:
        with pytest.raises(DeliveryError, match=r"ConnectError") as caught:
            await hook.deliver(hook.render(medan_outage()), None)
    assert not caught.value.permanent


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", timedelta(0)),
        ("120", timedelta(minutes=2)),
        (" 7 ", timedelta(seconds=7)),
        ("Mon, 23 Nov 2026 03:35:00 GMT", timedelta(minutes=5)),
        ("Mon, 23 Nov 2026 03:00:00 GMT", timedelta(0)),  # already past
        ("99999999999999999999", MAX_RETRY_AFTER),
        ("Tue, 23 Nov 2027 03:35:00 GMT", MAX_RETRY_AFTER),
        ("-5", None),
        ("soon", None),
        ("1.5", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    value: str | None, expected: timedelta | None
) -> None:
    assert parse_retry_after(value, AT) == expected


# -- configuration ------------------------------------------------------------------------


async def test_no_webhook_table_means_no_targets(http: httpx.AsyncClient, config: Config) -> None:
    async with open_targets({}, deps_for(http, config)) as targets:
        assert targets == []


async def test_a_public_https_url_is_accepted_without_a_lookup(
    http: httpx.AsyncClient, config: Config
) -> None:
    async with webhook(deps_for(http, config, allow_private=False)) as hook:
        assert hook.target == "webhook:newsroom"
        assert SECRET not in repr(hook)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.id/siaran",
        "ftp://hooks.example.id/siaran",
        "https:///siaran",
        "https://hooks.example.id:port/siaran",
        "https://localhost/siaran",
        "https://api.localhost./siaran",
        "https://127.0.0.1/siaran",
        "https://2130706433/siaran",  # 127.0.0.1 in the legacy integer form
        "https://10.0.0.5/siaran",
        "https://192.168.1.10/siaran",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://[::1]/siaran",
        "https://[::ffff:10.0.0.5]/siaran",
        "https://[fe80::1%25eth0]/siaran",
    ],
)
async def test_a_url_that_is_not_public_https_is_refused(
    http: httpx.AsyncClient, config: Config, url: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        async with webhook(deps_for(http, config, allow_private=False), url=url):
            pass
    assert caught.value.key_path == "webhook[0].url"


async def test_loopback_http_is_allowed_for_development(
    http: httpx.AsyncClient, config: Config
) -> None:
    async with webhook(deps_for(http, config), url="http://127.0.0.1:8080/hook") as hook:
        assert hook.config.url == "http://127.0.0.1:8080/hook"


async def test_a_missing_secret_names_the_key_and_the_variable_but_no_value(
    http: httpx.AsyncClient, config: Config
) -> None:
    with pytest.raises(ConfigError) as caught:
        async with webhook(deps_for(http, config, environ={"OTHER": SECRET})):
            pass
    assert caught.value.key_path == "webhook[0].secret_env"
    assert "SIARAN_WEBHOOK_NEWSROOM" in str(caught.value)
    assert SECRET not in str(caught.value)


async def test_a_key_pasted_where_its_variable_name_belongs_is_not_echoed(
    http: httpx.AsyncClient, config: Config
) -> None:
    with pytest.raises(ConfigError) as caught:
        async with webhook(deps_for(http, config), secret_env="s3cr3t-hmac-key-value"):
            pass
    assert caught.value.key_path == "webhook[0].secret_env"
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "key_path"),
    [
        ({"colour": "red"}, "webhook[0].colour"),
        ({"id": "News Room"}, "webhook[0].id"),
        ({"timeout": "10"}, "webhook[0].timeout"),
        ({"timeout": "0s"}, "webhook[0].timeout"),
        ({"components": []}, "webhook[0].components"),
        ({"components": ["*", "kcu-bandung"]}, "webhook[0].components[1]"),
        ({"components": ["Bali"]}, "webhook[0].components[0]"),
        ({"components": ["region:Jawa Barat"]}, "webhook[0].components[0]"),
        ({"kinds": []}, "webhook[0].kinds"),
        ({"kinds": ["incident.create"]}, "webhook[0].kinds[0]"),
        ({"kinds": ["incident.resolved", "branch.*"]}, "webhook[0].kinds[1]"),
    ],
)
async def test_a_bad_table_names_its_key_path(
    http: httpx.AsyncClient, config: Config, overrides: dict[str, Any], key_path: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        async with webhook(deps_for(http, config), **overrides):
            pass
    assert caught.value.key_path == key_path


async def test_two_webhooks_cannot_share_an_id(http: httpx.AsyncClient, config: Config) -> None:
    with pytest.raises(ConfigError) as caught:
        async with open_targets({"webhook": [table(), table()]}, deps_for(http, config)):
            pass
    assert caught.value.key_path == "webhook[1].id"


async def test_a_short_key_is_refused(http: httpx.AsyncClient, config: Config) -> None:
    with pytest.raises(ConfigError, match="shorter than 16 bytes") as caught:
        async with webhook(deps_for(http, config, environ={"SIARAN_WEBHOOK_NEWSROOM": "abc"})):
            pass
    assert caught.value.key_path == "webhook[0].secret_env"


async def test_a_single_table_instead_of_an_array_is_refused(
    http: httpx.AsyncClient, config: Config
) -> None:
    with pytest.raises(ConfigError, match=r"\[\[webhook\]\]"):
        async with open_targets({"webhook": table()}, deps_for(http, config)):
            pass


# -- what a subscriber follows ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "event", "wanted"),
    [
        ({}, medan_outage(), True),
        ({}, queue_reading(), False),  # readings are opt-in
        ({"kinds": ["queues.updated"]}, queue_reading(), True),
        ({"kinds": ["incident.resolved"]}, medan_outage(), False),
        ({"kinds": ["incident.resolved"]}, medan_outage(kind="incident.resolved"), True),
        ({"kinds": ["incident.*"]}, medan_outage(kind="incident.updated"), True),
        ({"kinds": ["maintenance.*"]}, medan_outage(), False),
        ({"components": ["kcu-medan"]}, medan_outage(), True),
        ({"components": ["kcu-denpasar"]}, medan_outage(), False),
        ({"components": ["region:Sumatera Utara"]}, medan_outage(), True),
        ({"components": ["region:Bali"]}, medan_outage(), False),
        ({"components": ["region:Bali"], "kinds": ["queues.updated"]}, queue_reading(), False),
    ],
)
async def test_a_subscriber_gets_only_what_it_follows(
    http: httpx.AsyncClient,
    config: Config,
    overrides: dict[str, Any],
    event: Event,
    wanted: bool,
) -> None:
    async with webhook(deps_for(http, config), **overrides) as hook:
        assert hook.wants(event) is wanted
