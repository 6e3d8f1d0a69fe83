"""Webhook: POST every event as signed JSON to a subscriber's URL.

Configuration, one `[[webhook]]` table per subscriber:

    [[webhook]]
    id = "newsroom"                          # slug; the target is "webhook:newsroom"
    url = "https://hooks.example.id/siaran"  # https; loopback/private hosts are refused
    secret_env = "SIARAN_WEBHOOK_NEWSROOM"   # NAME of the env var holding the HMAC key
    components = ["*"]                       # "*", component ids, "region:<name>"
    kinds = ["*"]                            # "*" (all but queues.updated), kinds, "incident.*"
    timeout = "10s"                          # the whole exchange, connect to status line

The body (keys are a contract: never renamed or removed, new ones may be added):

    {"id": 7,                                # the event id; the same on every retry: dedupe on it
     "kind": "incident.created",             # one of EVENT_KINDS
     "created_at": "2026-11-23T03:30:00.000Z",
     "incident": {...} | null,               # Statuspage's incident shape (/api/v2/incidents.json)
     "component_changes": [{"id", "name", "old_status", "new_status"}, ...],
     "component_ids": ["kcu-medan", ...],    # every component the event concerns
     "page": {"name": "Status e-Meterai", "url": "https://status.example.id"}}

It is UTF-8 JSON without spaces; staff text is kept verbatim (JSON escaping only, no HTML).

Headers: content-type `application/json`, user-agent `siaran-webhook`, `x-siaran-event`
(kind), `x-siaran-delivery` (event id), `x-siaran-timestamp` (unix seconds at sending) and
`x-siaran-signature: sha256=<hex HMAC-SHA256(key, f"{timestamp}.{body}")>`. A receiver
checks it with `verify()` below (or its own ten lines) and trusts `id`/`kind` from the signed
body, not from the headers. A retry re-signs the same body with a fresh timestamp.

Answers: 2xx delivered. 404/410, 3xx (redirects are never followed: a redirect could lead to a
private address) and other 4xx stop the target (DeliveryError permanent). 408, 429, 5xx,
timeouts and network errors are retried; 429 and 503 honour Retry-After (seconds or HTTP-date).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import re
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from broadcasters._base import Broadcaster, DeliveryError, Deps, Message, Receipt
from status.config import SLUG, ConfigError, Site, parse_tables
from status.durations import format_duration
from status.model import Event
from status.render.statuspage import iso
from status.vocabulary import EventKind

TABLE = "webhook"
EVENT_KINDS = tuple(kind.value for kind in EventKind)
# Queue readings change every few seconds; a subscriber asks for them by name.
OPT_IN_KINDS = (EventKind.QUEUES_UPDATED.value,)
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
MIN_SECRET_BYTES = 16
# A receiver's Retry-After holds this target's queue; past an hour ops should look instead.
MAX_RETRY_AFTER = timedelta(hours=1)
USER_AGENT = "siaran-webhook"


@dataclass(frozen=True, slots=True)
class Config:
    id: str
    url: str
    secret_env: str
    components: tuple[str, ...] = ("*",)
    kinds: tuple[str, ...] = ("*",)
    timeout: timedelta = timedelta(seconds=10)


def is_kind_wanted(kind: str, patterns: Iterable[str]) -> bool:
    """ "*" is every kind but the opt-in ones; "incident.*" a family; anything else exact."""
    for pattern in patterns:
        if pattern == "*" and kind not in OPT_IN_KINDS:
            return True
        if pattern.endswith(".*") and kind.startswith(pattern[:-1]):
            return True
        if pattern == kind:
            return True
    return False


def render_body(event: Event, site: Site) -> str:
    """The JSON a subscriber receives (shape in the module docstring)."""
    document = {
        "id": event.id,
        "kind": event.kind,
        "created_at": iso(event.created_at),
        "incident": event.payload.get("incident"),
        "component_changes": list(event.payload.get("component_changes", [])),
        "component_ids": list(event.component_ids),
        "page": {"name": site.name, "url": site.public_url},
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode()
    except UnicodeEncodeError:
        # A lone surrogate in staff text (JSON lets a client send "\ud800") has no UTF-8 form;
        # \u escapes keep the body valid JSON and the text as the staff member sent it.
        text = json.dumps(document, ensure_ascii=True, separators=(",", ":"))
    return text


def _mac(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: str, now: datetime) -> dict[str, str]:
    """Headers that let the receiver check origin and freshness."""
    timestamp = str(int(now.timestamp()))
    return {
        "x-siaran-timestamp": timestamp,
        "x-siaran-signature": f"sha256={_mac(secret, timestamp, body.encode())}",
    }


def verify(
    secret: bytes,
    body: bytes,
    timestamp: str,
    signature: str,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> bool:
    """The receiver's check: the signature matches the raw body and the timestamp is fresh.

    Pass the body bytes exactly as received (before any JSON parsing) and the two headers.
    A timestamp further than `tolerance` from `now`, either way, is refused so that a captured
    request cannot be replayed later. Never raises.
    """
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    if abs(int(timestamp) - now.timestamp()) > tolerance.total_seconds():
        return False
    if not signature.isascii():
        return False
    expected = f"sha256={_mac(secret, timestamp, body)}"
    return hmac.compare_digest(expected.encode(), signature.encode())


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or an HTTP-date (RFC 9110 §10.2.3), capped; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = int(value[:7])  # past the cap, digits add nothing; int() of a huge string is slow
        return min(timedelta(seconds=seconds), MAX_RETRY_AFTER)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:  # "-0000" dates parse naive; HTTP-dates are always GMT
        at = at.replace(tzinfo=UTC)
    return min(max(at - now, timedelta(0)), MAX_RETRY_AFTER)


def classify(status: int, retry_after: str | None, now: datetime) -> DeliveryError | None:
    """None for 2xx; otherwise the DeliveryError this answer means (see module docstring)."""
    if 200 <= status < 300:
        return None
    if status in (404, 410):
        return DeliveryError(f"HTTP {status}: the receiver no longer has this hook", permanent=True)
    if 300 <= status < 400:
        return DeliveryError(
            f"HTTP {status}: redirects are not followed; configure the final URL", permanent=True
        )
    if status in (429, 503):
        return DeliveryError(f"HTTP {status}", retry_after=parse_retry_after(retry_after, now))
    if 400 <= status < 500 and status != 408:
        return DeliveryError(f"HTTP {status}: the receiver refuses this request", permanent=True)
    return DeliveryError(f"HTTP {status}")


@dataclass(frozen=True, slots=True)
class Webhook:
    config: Config
    secret: bytes = field(repr=False)
    deps: Deps = field(repr=False)  # its environ holds every secret of the process

    @property
    def target(self) -> str:
        return f"{TABLE}:{self.config.id}"

    def wants(self, event: Event) -> bool:
        return is_kind_wanted(event.kind, self.config.kinds) and event.touches(
            self.config.components, self.deps.regions
        )

    def render(self, event: Event) -> Message:
        return Message(self.target, render_body(event, self.deps.config.site))

    async def deliver(self, message: Message, previous: Receipt | None) -> Receipt | None:
        """POST once; returns None (webhooks have no receipt) or raises DeliveryError.

        Returns within `timeout`; the answer's body is never read. Error reasons never contain
        the URL, whose path often carries the subscriber's own token.
        """
        sent = json.loads(message.body)  # our own rendering: id and kind for the headers
        now = self.deps.clock.now()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "x-siaran-event": str(sent["kind"]),
            "x-siaran-delivery": str(sent["id"]),
            **sign(self.secret, message.body, now),
        }
        seconds = self.config.timeout.total_seconds()
        try:
            # httpx's timeout applies per phase (connect, write, each read); this caps the sum.
            async with (
                asyncio.timeout(seconds),
                self.deps.http.stream(
                    "POST",
                    self.config.url,
                    content=message.body.encode(),
                    headers=headers,
                    timeout=seconds,
                    follow_redirects=False,
                ) as response,
            ):
                status, retry_after = response.status_code, response.headers.get("retry-after")
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise DeliveryError(f"no answer within {format_duration(self.config.timeout)}") from exc
        except httpx.RequestError as exc:
            raise DeliveryError(f"{type(exc).__name__} posting to {self.target}") from exc
        error = classify(status, retry_after, now)
        if error is not None:
            raise error
        return None


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names without any lookup: IPv4/IPv6 literals, and the legacy IPv4
    forms a resolver still accepts ("2130706433", "0x7f.1" are 127.0.0.1)."""
    host = host.split("%", 1)[0]  # an IPv6 zone id ("fe80::1%25eth0")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return _is_public(embedded)
    return address.is_global and not address.is_multicast


def _check_url(path: str, url: str, *, allow_private: bool) -> None:
    """https to a public host, judged from the URL alone: no DNS lookup at config time.

    The URL is not echoed back: its path often holds the subscriber's token.
    """
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_private else ("https",)
    try:
        host = (parts.hostname or "").rstrip(".")
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        host = ""
    if parts.scheme not in schemes or not host:
        raise ConfigError(
            path,
            f'expected an https URL like "https://hooks.example.id/siaran", '
            f'got one with scheme "{parts.scheme}"',
        )
    if allow_private:
        return
    address = _literal_address(host)
    if (
        host == "localhost"
        or host.endswith(".localhost")
        or (address is not None and not _is_public(address))
    ):
        raise ConfigError(
            path, f'"{host}" is a loopback or private address; webhooks go to public hosts'
        )


def _check(index: int, config: Config, deps: Deps, seen: set[str]) -> bytes:
    """Validate one parsed table; returns its HMAC key."""
    at = f"{TABLE}[{index}]"
    if not SLUG.match(config.id):
        raise ConfigError(f"{at}.id", f'expected a lowercase id like "newsroom", got "{config.id}"')
    if config.id in seen:
        raise ConfigError(f"{at}.id", f'"{config.id}" is already used by another webhook')
    seen.add(config.id)
    _check_url(f"{at}.url", config.url, allow_private=deps.allow_private_targets)
    if not config.components:
        raise ConfigError(f"{at}.components", 'expected at least one entry, e.g. ["*"]')
    known, regions = deps.config.component_ids(), set(deps.regions.values())
    for j, item in enumerate(config.components):
        is_region = item.startswith("region:") and item[7:] in regions
        if item != "*" and item not in known and not is_region:
            raise ConfigError(
                f"{at}.components[{j}]",
                f'unknown component or region "{item}"; e.g. "*", "kcu-medan" or "region:Bali"',
            )
    if not config.kinds:
        raise ConfigError(f"{at}.kinds", 'expected at least one entry, e.g. ["*"]')
    families = {k.split(".")[0] + ".*" for k in EVENT_KINDS}
    for j, kind in enumerate(config.kinds):
        if kind != "*" and kind not in EVENT_KINDS and kind not in families:
            raise ConfigError(
                f"{at}.kinds[{j}]",
                f'unknown event kind "{kind}"; expected "*", a family like "incident.*" '
                f"or one of {', '.join(EVENT_KINDS)}",
            )
    if config.timeout <= timedelta(0):
        raise ConfigError(f"{at}.timeout", 'must be longer than 0s, e.g. "10s"')
    if not ENV_NAME.match(config.secret_env):
        # Not echoed: a value here that is not a variable name may well be the key itself.
        raise ConfigError(
            f"{at}.secret_env",
            'expected the NAME of an environment variable, like "SIARAN_WEBHOOK_NEWSROOM", '
            "that holds the key (never the key itself)",
        )
    try:
        secret = deps.secret(config.secret_env)
    except KeyError:
        raise ConfigError(
            f"{at}.secret_env",
            f"environment variable {config.secret_env} is not set; "
            "it must hold the HMAC key shared with this subscriber",
        ) from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{at}.secret_env",
            f"the key in {config.secret_env} is shorter than {MIN_SECRET_BYTES} bytes; "
            "generate one with `openssl rand -hex 32`",
        )
    return secret


def parse_webhooks(raw: object, deps: Deps) -> list[Webhook]:
    """`[[webhook]]` → targets; ConfigError names the key path (e.g. webhook[1].url)."""
    configs = parse_tables(Config, raw, path=TABLE)
    seen: set[str] = set()
    return [Webhook(c, _check(i, c, deps, seen), deps) for i, c in enumerate(configs)]


@asynccontextmanager
async def open_targets(doc: Mapping[str, Any], deps: Deps) -> AsyncIterator[list[Webhook]]:
    # Nothing to open: every webhook shares deps.http, which the lifespan owns.
    yield parse_webhooks(doc.get(TABLE), deps)


_: type[Broadcaster] = Webhook
