"""Telegram channels: what followers read, how config mistakes are reported, what the Bot API receives."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from broadcasters import DeliveryError, Deps, Message
from broadcasters._telegram_text import render_body
from broadcasters.telegram import (
    Channel,
    ChannelConfig,
    classify,
    open_targets,
    parse_config,
    view_for,
)
from status.config import ConfigError, load_config_text
from status.model import Event
from tests.conftest import TEST_CONFIG
from tests.fakes.telegram import FakeTelegram, fake_telegram
from tests.fakes.telegram_html import parse_html, utf16_length

pytestmark = pytest.mark.anyio

CONFIG = load_config_text(TEST_CONFIG, "t.toml")
CHANNEL = "@statusemeterai"
HOSTILE = "<b>&\"'"
SITE = "https://status.example.id/incidents"


@pytest.fixture(autouse=True)
def _timedelta_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 reads RetryAfter.retry_after in its own constructor and warns unless this is set;
    # filterwarnings=error would turn every 429 into a PTBDeprecationWarning.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


# ── people, places and what happened ────────────────────────────────────────────────────


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def update(
    status: str, body: str, at: datetime, affected: Sequence[tuple[str, str, str]] = ()
) -> dict[str, Any]:
    """A Statuspage incident_update; affected = (id, name, new status)."""
    return {
        "id": f"u-{status}-{at:%H%M}",
        "status": status,
        "body": body,
        "created_at": iso(at),
        "affected_components": [
            {"code": c, "name": n, "old_status": "operational", "new_status": s}
            for c, n, s in affected
        ]
        or None,
    }


def happened(
    kind: str,
    incident_id: str,
    name: str,
    updates: Sequence[dict[str, Any]],
    *,
    ids: Sequence[str],
    at: datetime | None = None,
    **extra: Any,
) -> Event:
    """An outbox event carrying the incident as core builds it; `updates` oldest first."""
    newest = updates[-1]
    incident = {
        "id": incident_id,
        "name": name,
        "status": newest["status"],
        "impact": "major",
        "shortlink": f"{SITE}/{incident_id}",
        "created_at": updates[0]["created_at"],
        "incident_updates": list(reversed(updates)),
        "components": [],
        **extra,
    }
    when = at or datetime.fromisoformat(newest["created_at"])
    return Event(1, kind, when, incident_id, tuple(ids), {"incident": incident})


MEDAN = ("kcu-medan", "KCU Medan")
DENPASAR = ("kcu-denpasar", "KCU Denpasar")
JAYAPURA = ("kcu-jayapura", "KCU Jayapura")

MEDAN_CLOSED = update(
    "investigating",
    "Sistem e-Meterai pusat tidak merespons. Loket pembelian ditutup sementara.",
    utc(23, 3, 30),
    [(*MEDAN, "major_outage")],
)
MEDAN_CAUSE = update(
    "identified",
    "Penyebab ditemukan: server penerbit kelebihan beban.",
    utc(23, 4, 5),
    [(*MEDAN, "partial_outage")],
)
MEDAN_OPEN = update("resolved", "Loket kembali melayani.", utc(23, 6, 0), [(*MEDAN, "operational")])
MEDAN_NAME = "Loket e-Meterai KCU Medan tutup"


def medan(*updates: dict[str, Any]) -> Event:
    kind = {
        "investigating": "incident.created",
        "identified": "incident.updated",
        "resolved": "incident.resolved",
    }[updates[-1]["status"]]
    return happened(kind, "inc-medan", MEDAN_NAME, updates, ids=["kcu-medan"])


DENPASAR_EVENT = happened(
    "incident.updated",
    "inc-denpasar",
    "Counter closed at KCU Denpasar",
    [
        update(
            "investigating",
            "Buyers are turned away until the network comes back.",
            utc(23, 1, 15),
            [(*DENPASAR, "major_outage")],
        ),
        update(
            "identified",
            "The network link is back; download links are being resent.",
            utc(23, 12, 0),
            [(*DENPASAR, "partial_outage")],
        ),
    ],
    ids=["kcu-denpasar"],
)
JAYAPURA_EVENT = happened(
    "incident.resolved",
    "inc-jayapura",
    "Antrean KCU Jayapura tidak bergerak",
    [
        update("investigating", "Nomor antrean berhenti di 37.", utc(23, 1, 0)),
        update(
            "resolved", "Antrean kembali bergerak.", utc(23, 5, 0), [(*JAYAPURA, "operational")]
        ),
    ],
    ids=["kcu-jayapura"],
)
MAINTENANCE_EVENT = happened(
    "maintenance.scheduled",
    "mnt-penerbit",
    "Pemeliharaan server penerbit",
    [update("scheduled", "Pembelian e-Meterai tidak tersedia selama pemeliharaan.", utc(23, 10))],
    ids=["emeterai-purchase"],
    scheduled_for=iso(utc(28, 15)),
    scheduled_until=iso(utc(28, 19)),
    components=[
        {"id": "emeterai-purchase", "name": "Pembelian e-Meterai", "status": "operational"}
    ],
)
HOSTILE_EVENT = happened(
    "incident.created",
    "inc-hostile",
    HOSTILE,
    [update("investigating", HOSTILE, utc(23, 3, 30), [("kcu-medan", HOSTILE, "major_outage")])],
    ids=["kcu-medan"],
)


def render(event: Event, **channel: Any) -> dict[str, Any]:
    """The delivery body a channel with these settings would store, parsed."""
    envelope: dict[str, Any] = json.loads(
        render_body(event, view_for(ChannelConfig(CHANNEL, **channel), CONFIG))
    )
    return envelope


def deps(environ: Mapping[str, str] | None = None, clock: Any = None) -> Deps:
    return Deps(clock or SteppingClock(utc(23, 3)), httpx.AsyncClient(), CONFIG, environ or {})


class SteppingClock:
    """A manual clock whose sleeps return at once, moving time on: pacing without waiting."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self.sleeps: list[datetime] = []

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> None:
        self._now += by

    async def sleep_until(self, at: datetime) -> None:
        self.sleeps.append(at)
        self._now = max(self._now, at)


# ── what followers read ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("event", "channel", "post"),
    [
        pytest.param(
            medan(MEDAN_CLOSED),
            {},
            "🔴 Investigasi · <b>Loket e-Meterai KCU Medan tutup</b>\n"
            "\n"
            "Sistem e-Meterai pusat tidak merespons. Loket pembelian ditutup sementara.\n"
            "\n"
            "Terdampak:\n"
            "• KCU Medan: Gangguan total\n"
            "\n"
            "10.30 WIB · https://status.example.id/incidents/inc-medan",
            id="medan-created-id-wib",
        ),
        pytest.param(
            DENPASAR_EVENT,
            {"language": "en"},
            "🟠 Identified · <b>Counter closed at KCU Denpasar</b>\n"
            "\n"
            "The network link is back; download links are being resent.\n"
            "\n"
            "Affected:\n"
            "• KCU Denpasar: Partial outage\n"
            "\n"
            "20:00 WITA · https://status.example.id/incidents/inc-denpasar",
            id="denpasar-update-en-wita",
        ),
        pytest.param(
            JAYAPURA_EVENT,
            {},
            "✅ Selesai · <b>Antrean KCU Jayapura tidak bergerak</b>\n"
            "\n"
            "Antrean kembali bergerak.\n"
            "\n"
            "Terdampak:\n"
            "• KCU Jayapura: Normal\n"
            "\n"
            "14.00 WIT · https://status.example.id/incidents/inc-jayapura",
            id="jayapura-resolved-id-wit",
        ),
        pytest.param(
            MAINTENANCE_EVENT,
            {},
            "📅 Terjadwal · <b>Pemeliharaan server penerbit</b>\n"
            "\n"
            "Pembelian e-Meterai tidak tersedia selama pemeliharaan.\n"
            "\n"
            "Jadwal: Sabtu 28-11-2026 22.00 WIB s.d. Minggu 29-11-2026 02.00 WIB\n"
            "\n"
            "Terdampak:\n"
            "• Pembelian e-Meterai: Normal\n"
            "\n"
            "17.00 WIB · https://status.example.id/incidents/mnt-penerbit",
            id="maintenance-scheduled-id",
        ),
        pytest.param(
            HOSTILE_EVENT,
            {"language": "en"},
            "🔴 Investigating · <b>&lt;b&gt;&amp;\"'</b>\n"
            "\n"
            "&lt;b&gt;&amp;\"'\n"
            "\n"
            "Affected:\n"
            "• &lt;b&gt;&amp;\"': Major outage\n"
            "\n"
            "10:30 WIB · https://status.example.id/incidents/inc-hostile",
            id="hostile-text-escaped",
        ),
    ],
)
def test_a_post_reads_status_name_notice_components_local_time_and_link(
    event: Event, channel: dict[str, Any], post: str
) -> None:
    assert render(event, **channel)["post"] == post
    parse_html(post)  # Telegram accepts it


def test_the_first_post_is_rewritten_with_the_current_status_on_top() -> None:
    envelope = render(DENPASAR_EVENT, language="en")
    assert envelope["head"] == (
        "🟠 Identified · <b>Counter closed at KCU Denpasar</b>\n"
        "\n"
        "Buyers are turned away until the network comes back.\n"
        "\n"
        "Affected:\n"
        "• KCU Denpasar: Major outage\n"
        "\n"
        "09:15 WITA · https://status.example.id/incidents/inc-denpasar"
    )


def test_the_first_post_changes_only_its_top_line() -> None:
    first = render(medan(MEDAN_CLOSED))["post"].split("\n")
    head = render(medan(MEDAN_CLOSED, MEDAN_CAUSE))["head"].split("\n")
    assert head[0] == "🟠 Teridentifikasi · <b>Loket e-Meterai KCU Medan tutup</b>"
    assert head[1:] == first[1:]


@pytest.mark.parametrize(
    ("event", "head", "pin", "unpin"),
    [
        (medan(MEDAN_CLOSED), False, True, False),
        (medan(MEDAN_CLOSED, MEDAN_CAUSE), True, False, False),
        (medan(MEDAN_CLOSED, MEDAN_CAUSE, MEDAN_OPEN), True, False, True),
        (MAINTENANCE_EVENT, False, True, False),
    ],
)
def test_the_envelope_says_what_delivery_does(
    event: Event, head: bool, pin: bool, unpin: bool
) -> None:
    envelope = render(event)
    assert set(envelope) == {"post", "head", "pin", "unpin"}
    assert (envelope["head"] is not None, envelope["pin"], envelope["unpin"]) == (head, pin, unpin)


def test_a_completed_maintenance_unpins_its_first_post() -> None:
    done = happened(
        "maintenance.updated",
        "mnt-penerbit",
        "Pemeliharaan server penerbit",
        [
            update("scheduled", "Dijadwalkan.", utc(23, 10)),
            update("completed", "Pemeliharaan terjadwal telah selesai.", utc(28, 19)),
        ],
        ids=["emeterai-purchase"],
        scheduled_for=iso(utc(28, 15)),
        scheduled_until=iso(utc(28, 19)),
    )
    envelope = render(done)
    assert envelope["unpin"] is True
    assert envelope["post"].startswith("✅ Selesai · <b>Pemeliharaan server penerbit</b>\n")


def test_a_ten_thousand_character_notice_is_trimmed_to_fit_with_the_link_kept() -> None:
    body = ("Antrean panjang di loket <b>&\"' " * 400)[:10_000]  # hostile, too
    assert len(body) == 10_000
    post = render(medan(update("investigating", body, utc(23, 3, 30), [(*MEDAN, "major_outage")])))[
        "post"
    ]
    text, _ = parse_html(post)
    assert utf16_length(text) <= 4096
    assert utf16_length(text) > 4000  # trimmed, not gutted
    lines = post.split("\n")
    assert lines[0] == "🔴 Investigasi · <b>Loket e-Meterai KCU Medan tutup</b>"
    assert lines[2].startswith("Antrean panjang di loket &lt;b&gt;&amp;\"' Antrean")
    assert lines[2].endswith("…")
    assert "&amp…" not in lines[2]  # never half an escape
    assert "&…" not in lines[2]
    assert lines[-1] == "10.30 WIB · https://status.example.id/incidents/inc-medan"


def test_trimming_counts_utf16_units_and_never_splits_an_emoji() -> None:
    body = "🚨" * 3000  # 6000 UTF-16 units
    post = render(medan(update("investigating", body, utc(23, 3, 30))))["post"]
    text, _ = parse_html(post)  # would raise on half a surrogate pair
    assert utf16_length(text) <= 4096
    assert "🚨…" in text


def test_a_region_wide_incident_lists_ten_branches_and_counts_the_rest() -> None:
    affected = [(f"kcu-{i}", f"KCU Cabang {i:02d}", "major_outage") for i in range(15)]
    event = medan(update("investigating", "Gangguan regional.", utc(23, 3, 30), affected))
    post = render(event)["post"]
    assert "• KCU Cabang 09: Gangguan total\n… dan 5 lainnya\n" in post
    assert "KCU Cabang 10" not in post


def test_a_status_without_a_word_is_shown_as_it_is() -> None:
    odd = update("escalated", "", utc(23, 3, 30), [(*MEDAN, "flooded")])
    post = render(happened("incident.updated", "inc-x", "Banjir", [odd], ids=["kcu-medan"]))["post"]
    assert post.split("\n")[:4] == [
        "📢 escalated · <b>Banjir</b>",
        "",
        "Terdampak:",
        "• KCU Medan: flooded",
    ]


@pytest.mark.parametrize(
    ("channel", "ids", "time"),
    [
        ({}, ["kcu-medan"], "10.30 WIB"),
        ({}, ["kcu-denpasar"], "11.30 WITA"),
        ({}, ["kcu-jayapura"], "12.30 WIT"),
        ({}, ["kcu-medan", "kcu-denpasar"], "10.30 WIB"),  # no one zone: the site's
        ({}, [], "10.30 WIB"),  # a notice for everyone
        ({"components": ["region:Bali"]}, [], "11.30 WITA"),  # the channel's own branches
        ({"timezone": "Asia/Jayapura"}, ["kcu-medan"], "12.30 WIT"),
    ],
)
def test_times_are_shown_in_the_readers_zone(
    channel: dict[str, Any], ids: list[str], time: str
) -> None:
    event = happened(
        "incident.created",
        "inc-x",
        "Pengumuman",
        [update("investigating", "", utc(23, 3, 30))],
        ids=ids,
    )
    assert render(event, **channel)["post"].endswith(f"\n{time} · {SITE}/inc-x")


@pytest.mark.parametrize(
    ("kind", "components", "wanted"),
    [
        ("incident.created", ["*"], True),
        ("incident.updated", ["kcu-medan"], True),
        ("incident.resolved", ["region:Sumatera Utara"], True),
        ("maintenance.scheduled", ["*"], True),
        ("maintenance.updated", ["*"], True),
        ("incident.created", ["kcu-denpasar"], False),
        ("incident.created", ["region:Bali"], False),
        ("incident.affected", ["*"], False),
        ("component.updated", ["*"], False),
        ("queues.updated", ["*"], False),
        ("components.synced", ["*"], False),
    ],
)
def test_a_channel_follows_incidents_and_maintenance_of_its_components(
    kind: str, components: list[str], wanted: bool
) -> None:
    event = Event(1, kind, utc(23, 3), "inc-medan", ("kcu-medan",), {})
    config = ChannelConfig(CHANNEL, components=tuple(components))
    channel = Channel(config, None, deps(), view_for(config, CONFIG))  # type: ignore[arg-type]  # wants never touches the bot
    assert channel.wants(event) is wanted


def folded(new_status: str = "major_outage") -> Event:
    """KCU Medan folded into an open incident on the e-Meterai purchase service."""
    event = happened(
        "incident.affected",
        "inc-upstream",
        "Pembelian e-Meterai gagal",
        [update("investigating", "Server pusat lambat.", utc(23, 3, 0))],
        ids=["emeterai-purchase", "kcu-medan"],
        at=utc(23, 3, 20),
    )
    change = {"id": "kcu-medan", "name": "KCU Medan", "old_status": "operational"}
    changes = [change | {"new_status": new_status}]
    return replace(event, payload={**event.payload, "component_changes": changes})


@pytest.mark.parametrize(
    ("components", "new_status", "wanted"),
    [
        (["kcu-medan"], "major_outage", True),
        (["region:Sumatera Utara"], "major_outage", True),
        (["kcu-medan", "emeterai-purchase"], "major_outage", False),  # has the thread already
        (["emeterai-purchase"], "major_outage", False),
        (["*"], "major_outage", False),
        (["kcu-denpasar"], "major_outage", False),
        (["kcu-medan"], "operational", False),  # recovered inside the incident: the board's news
    ],
)
def test_a_branch_folded_into_an_incident_is_posted_where_it_is_news(
    components: list[str], new_status: str, wanted: bool
) -> None:
    config = ChannelConfig(CHANNEL, components=tuple(components))
    channel = Channel(config, None, deps(), view_for(config, CONFIG))  # type: ignore[arg-type]  # wants never touches the bot
    assert channel.wants(folded(new_status)) is wanted


def test_a_folded_branch_starts_a_pinned_thread_naming_it() -> None:
    envelope = render(folded(), language="en")
    assert envelope == {
        "post": "🔴 Investigating · <b>Pembelian e-Meterai gagal</b>\n\nServer pusat lambat.\n\n"
        "Affected:\n• KCU Medan: Major outage\n\n"
        "10:20 WIB · https://status.example.id/incidents/inc-upstream",
        "head": None,
        "pin": True,
        "unpin": False,
    }


# ── config ──────────────────────────────────────────────────────────────────────────────


def test_channels_are_parsed_with_their_defaults() -> None:
    config = parse_config(
        {
            "token_env": "SIARAN_TG",
            "channel": [
                {"chat": CHANNEL, "live_board": True},
                {"chat": -1001234567890, "components": ["region:Bali"], "language": "en"},
            ],
            "bot": {"anything": ["the subscriber bot reads this"]},
        },
        CONFIG,
    )
    assert config.settings.token_env == "SIARAN_TG"
    assert config.settings.api_base_url == "https://api.telegram.org/bot"
    assert config.channels == (
        ChannelConfig(CHANNEL, live_board=True),
        ChannelConfig("-1001234567890", ("region:Bali",), "en"),
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([], "telegram: expected a table ([telegram])"),
        (
            {"tokn_env": "X"},
            "telegram.tokn_env: unknown key; allowed keys are token_env, api_base_url, channel, bot",
        ),
        (
            {"token_env": "123456:AAE-secret"},
            'telegram.token_env: expected the name of an environment variable like "SIARAN_TELEGRAM_TOKEN"',
        ),
        (
            {"api_base_url": "api.telegram.org"},
            'telegram.api_base_url: expected a URL like "https://api.telegram.org/bot", got "api.telegram.org"',
        ),
        (
            {"channel": {"chat": CHANNEL}},
            "telegram.channel: expected an array of tables ([[telegram.channel]])",
        ),
        (
            {"channel": [{"chat": CHANNEL}, {"chat": "statusemeterai"}]},
            'telegram.channel[1].chat: expected "@channelname" or a numeric chat id like -1001234567890, got "statusemeterai"',
        ),
        ({"channel": [{}]}, "telegram.channel[0].chat: required key is missing"),
        (
            {"channel": [{"chat": CHANNEL, "components": ["kcu-bogor"]}]},
            'telegram.channel[0].components[0]: unknown component "kcu-bogor"; use "*", a [[component]] or [[branch]] id, or "region:<branch region>"',
        ),
        (
            {"channel": [{"chat": CHANNEL, "components": ["*", "region:Jawa"]}]},
            'telegram.channel[0].components[1]: unknown region "Jawa"; use "*", a [[component]] or [[branch]] id, or "region:<branch region>"',
        ),
        (
            {"channel": [{"chat": CHANNEL, "components": []}]},
            'telegram.channel[0].components: expected at least one entry, e.g. ["*"]',
        ),
        (
            {"channel": [{"chat": CHANNEL, "language": "jv"}]},
            'telegram.channel[0].language: expected "id" or "en", got "jv"',
        ),
        (
            {"channel": [{"chat": CHANNEL, "live_board": "yes"}]},
            'telegram.channel[0].live_board: expected true or false, got "yes"',
        ),
        (
            {"channel": [{"chat": CHANNEL, "timezone": "WITA"}]},
            'telegram.channel[0].timezone: unknown time zone "WITA"; e.g. "Asia/Jakarta" (WIB), "Asia/Makassar" (WITA), "Asia/Jayapura" (WIT)',
        ),
        (
            {"channel": [{"chat": CHANNEL}, {"chat": CHANNEL}]},
            'telegram.channel[1].chat: "@statusemeterai" is already used by telegram.channel[0]',
        ),
    ],
)
def test_config_mistakes_name_the_key_and_show_an_example(table: Any, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(table, CONFIG)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "doc", [{}, {"telegram": {}}, {"telegram": {"bot": {"webhook": True}, "channel": []}}]
)
async def test_no_table_or_no_channel_opens_nothing_and_needs_no_token(
    doc: dict[str, Any],
) -> None:
    async with open_targets(doc, deps()) as targets:
        assert targets == []


async def test_a_missing_token_names_the_variable() -> None:
    doc = {"telegram": {"token_env": "SIARAN_TG", "channel": [{"chat": CHANNEL}]}}
    with pytest.raises(ConfigError) as raised:
        async with open_targets(doc, deps({"SIARAN_TELEGRAM_TOKEN": "123:not-this-one"})):
            pass
    assert str(raised.value) == (
        "telegram.token_env: environment variable SIARAN_TG is not set; "
        "put the channel bot's token from @BotFather there"
    )


async def test_a_rejected_token_is_a_config_error_that_never_shows_it(
    telegram: FakeTelegram,
) -> None:
    doc = channel_doc(telegram)
    with pytest.raises(ConfigError) as raised:
        async with open_targets(doc, deps({"SIARAN_TELEGRAM_TOKEN": "999:revoked-secret"})):
            pass
    assert "revoked-secret" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__  # PTB's InvalidToken quotes the token
    assert str(raised.value).startswith(
        "telegram.token_env: Telegram rejected the token in SIARAN_TELEGRAM_TOKEN"
    )


async def test_telegram_down_at_start_does_not_stop_the_service(
    telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    telegram.outage = "bad_gateway"
    async with open_targets(channel_doc(telegram), deps(environ(telegram))) as targets:
        telegram.outage = None
        (channel,) = targets
        assert await channel.deliver(channel.render(medan(MEDAN_CLOSED)), None) == "1"
    assert "Bot API unreachable at start" in caplog.text


async def test_the_token_never_reaches_the_logs(
    telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with opened(telegram) as channel:
        await channel.deliver(channel.render(medan(MEDAN_CLOSED)), None)
    assert telegram.token not in caplog.text
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("telegram").getEffectiveLevel() >= logging.INFO


# ── what Telegram receives ──────────────────────────────────────────────────────────────


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(utc(23, 3, 30))


@pytest.fixture
def telegram(clock: SteppingClock) -> Iterator[FakeTelegram]:
    with fake_telegram(clock=lambda: clock.now().timestamp()) as fake:
        fake.add_channel(CHANNEL, chat_id=-1001234567890, title="Status e-Meterai")
        yield fake


def channel_doc(fake: FakeTelegram, chat: str = CHANNEL) -> dict[str, Any]:
    return {"telegram": {"api_base_url": f"{fake.url}/bot", "channel": [{"chat": chat}]}}


def environ(fake: FakeTelegram) -> dict[str, str]:
    return {"SIARAN_TELEGRAM_TOKEN": fake.token}


@asynccontextmanager
async def opened(
    fake: FakeTelegram, clock: SteppingClock | None = None, chat: str = CHANNEL
) -> AsyncIterator[Channel]:
    async with open_targets(channel_doc(fake, chat), deps(environ(fake), clock)) as targets:
        (channel,) = targets
        yield channel


async def send(channel: Channel, event: Event, previous: str | None = None) -> str | None:
    return await channel.deliver(channel.render(event), previous)


def top_line(fake: FakeTelegram, message_id: int, chat: str | int = CHANNEL) -> str:
    return next(m for m in fake.messages(chat) if m.message_id == message_id).text.split("\n")[0]


async def test_a_new_incident_is_posted_and_pinned_silently(
    telegram: FakeTelegram, clock: SteppingClock
) -> None:
    async with opened(telegram, clock) as channel:
        receipt = await send(channel, medan(MEDAN_CLOSED))
    (post,) = telegram.messages(CHANNEL)
    assert receipt == str(post.message_id)
    assert post.text == (
        "🔴 Investigasi · Loket e-Meterai KCU Medan tutup\n\n"
        "Sistem e-Meterai pusat tidak merespons. Loket pembelian ditutup sementara.\n\n"
        "Terdampak:\n• KCU Medan: Gangguan total\n\n"
        "10.30 WIB · https://status.example.id/incidents/inc-medan"
    )
    assert {"type": "bold", "offset": 17, "length": 31} in post.entities
    assert [m.message_id for m in telegram.pinned(CHANNEL)] == [post.message_id]
    (pin,) = telegram.calls("pinChatMessage")
    assert pin.params["disable_notification"] is True
    (sent,) = telegram.calls("sendMessage")
    assert sent.params["link_preview_options"] == {"is_disabled": True}


async def test_an_update_replies_to_the_first_post_and_changes_its_top_line(
    telegram: FakeTelegram, clock: SteppingClock
) -> None:
    async with opened(telegram, clock) as channel:
        first = await send(channel, medan(MEDAN_CLOSED))
        assert first is not None
        reply = await send(channel, medan(MEDAN_CLOSED, MEDAN_CAUSE), first)
    posted, answered = telegram.messages(CHANNEL)
    assert answered.reply_to == posted.message_id == int(first)
    assert reply == str(answered.message_id)
    assert answered.text.startswith("🟠 Teridentifikasi · Loket e-Meterai KCU Medan tutup\n")
    assert top_line(telegram, posted.message_id) == (
        "🟠 Teridentifikasi · Loket e-Meterai KCU Medan tutup"
    )
    assert "Sistem e-Meterai pusat tidak merespons." in posted.text  # the rest stays as sent
    assert posted.edit_date is not None


async def test_resolving_unpins_the_first_post(
    telegram: FakeTelegram, clock: SteppingClock
) -> None:
    async with opened(telegram, clock) as channel:
        first = await send(channel, medan(MEDAN_CLOSED))
        await send(channel, medan(MEDAN_CLOSED, MEDAN_CAUSE), first)
        await send(channel, medan(MEDAN_CLOSED, MEDAN_CAUSE, MEDAN_OPEN), first)
    assert telegram.pinned(CHANNEL) == []
    assert top_line(telegram, 1) == "✅ Selesai · Loket e-Meterai KCU Medan tutup"
    assert [m.reply_to for m in telegram.messages(CHANNEL)] == [None, 1, 1]


async def test_a_retried_update_is_not_stopped_by_the_unchanged_first_post(
    telegram: FakeTelegram, clock: SteppingClock
) -> None:
    async with opened(telegram, clock) as channel:
        first = await send(channel, medan(MEDAN_CLOSED))
        await send(channel, medan(MEDAN_CLOSED, MEDAN_CAUSE), first)
        await send(channel, medan(MEDAN_CLOSED, MEDAN_CAUSE), first)  # at-least-once
    assert [c.status for c in telegram.calls("editMessageText")] == [200, 400]
    assert len(telegram.messages(CHANNEL)) == 3


async def test_a_deleted_first_post_does_not_stop_the_news(
    telegram: FakeTelegram, clock: SteppingClock
) -> None:
    async with opened(telegram, clock) as channel:
        await send(channel, medan(MEDAN_CLOSED, MEDAN_CAUSE), "4242")
    (answered,) = telegram.messages(CHANNEL)
    assert answered.reply_to is None
    assert answered.text.startswith("🟠 Teridentifikasi")


async def test_sends_to_one_channel_are_paced_under_telegrams_limit(
    telegram: FakeTelegram, clock: SteppingClock
) -> None:
    async with opened(telegram, clock) as channel:
        first = await send(channel, medan(MEDAN_CLOSED))
        for _ in range(24):  # more than Telegram's 20 a minute in one channel
            await send(channel, medan(MEDAN_CLOSED, MEDAN_CAUSE), first)
    assert telegram.statuses()[429] == 0
    assert len(telegram.messages(CHANNEL)) == 25
    times = [c.at for c in telegram.calls() if c.method in ("sendMessage", "editMessageText")]
    assert all(b - a >= 1 for a, b in itertools.pairwise(times))  # about one a second
    assert all(times[i + 20] - times[i] >= 60 for i in range(len(times) - 20))  # 20 a minute


async def test_flood_control_gives_telegrams_wait_and_holds_the_channel(
    telegram: FakeTelegram, clock: SteppingClock
) -> None:
    telegram.flood(retry_after=5, chat=CHANNEL)
    async with opened(telegram, clock) as channel:
        with pytest.raises(DeliveryError) as raised:
            await send(channel, medan(MEDAN_CLOSED))
        assert raised.value.retry_after == timedelta(seconds=5)
        assert not raised.value.permanent
        calls = len(telegram.calls())
        clock.advance(timedelta(seconds=2))
        with pytest.raises(DeliveryError) as again:
            await send(channel, medan(MEDAN_CLOSED))
        assert again.value.retry_after == timedelta(seconds=3)
        assert len(telegram.calls()) == calls  # Telegram was left alone
        clock.advance(timedelta(seconds=3))
        assert await send(channel, medan(MEDAN_CLOSED)) == "1"


async def test_a_bot_removed_from_the_channel_disables_it(
    telegram: FakeTelegram, clock: SteppingClock
) -> None:
    telegram.remove_bot(CHANNEL)
    async with opened(telegram, clock) as channel:
        with pytest.raises(DeliveryError) as raised:
            await send(channel, medan(MEDAN_CLOSED))
    assert raised.value.permanent
    assert "bot is not a member of the channel chat" in str(raised.value).lower()


async def test_an_unknown_channel_disables_it(telegram: FakeTelegram, clock: SteppingClock) -> None:
    async with opened(telegram, clock, chat="@tidakada") as channel:
        with pytest.raises(DeliveryError) as raised:
            await send(channel, medan(MEDAN_CLOSED))
    assert raised.value.permanent
    assert "chat not found" in str(raised.value).lower()


async def test_a_migrated_group_gets_the_post_at_its_new_id(
    telegram: FakeTelegram, clock: SteppingClock, caplog: pytest.LogCaptureFixture
) -> None:
    group = telegram.add_group("Info e-Meterai Medan")
    new_id = telegram.migrate(group, new_chat_id=-1009876543210)
    async with opened(telegram, clock, chat=str(group)) as channel:
        first = await send(channel, medan(MEDAN_CLOSED))
        await send(channel, medan(MEDAN_CLOSED, MEDAN_CAUSE), first)
    assert [m.message_id for m in telegram.messages(new_id)] == [1, 2]
    assert [c.params["chat_id"] for c in telegram.calls("sendMessage")] == [group, new_id, new_id]
    assert f'Set chat = "{new_id}"' in caplog.text


async def test_text_telegram_refuses_fails_the_delivery_but_not_the_channel(
    telegram: FakeTelegram, clock: SteppingClock
) -> None:
    broken = json.dumps({"post": "<b>unclosed", "head": None, "pin": False, "unpin": False})
    async with opened(telegram, clock) as channel:
        with pytest.raises(DeliveryError) as raised:
            await channel.deliver(Message(channel.target, broken), None)
    assert not raised.value.permanent
    assert raised.value.retry_after == timedelta(seconds=10)
    assert "can't parse entities" in str(raised.value).lower()


async def test_a_bad_gateway_is_retried(telegram: FakeTelegram, clock: SteppingClock) -> None:
    async with opened(telegram, clock) as channel:
        telegram.outage = "bad_gateway"
        with pytest.raises(DeliveryError) as raised:
            await send(channel, medan(MEDAN_CLOSED))
    assert not raised.value.permanent
    assert raised.value.retry_after is None


@pytest.mark.parametrize(
    ("make", "permanent", "retry_after", "says"),
    [
        (lambda: RetryAfter(timedelta(seconds=7)), False, timedelta(seconds=7), "flood control"),
        (lambda: Forbidden("Forbidden: bot was blocked by the user"), True, None, "blocked"),
        (lambda: BadRequest("Chat not found"), True, None, "chat not found"),
        (lambda: BadRequest("Message is too long"), False, timedelta(seconds=10), "rendering bug"),
        (lambda: BadRequest("Message to edit not found"), False, None, "message to edit not found"),
        (lambda: TimedOut("Timed out"), False, None, "may have been delivered"),
        (
            lambda: NetworkError("httpx.ConnectError: All connection attempts failed"),
            False,
            None,
            "connect",
        ),
        (lambda: InvalidToken("Unauthorized"), True, None, "token was rejected"),
        (lambda: ChatMigrated(-1009876543210), False, None, "migrated"),
    ],
)
def test_telegram_errors_are_classified(
    make: Callable[[], TelegramError], permanent: bool, retry_after: timedelta | None, says: str
) -> None:
    classified = classify(make(), CHANNEL)  # built here: PTB reads env vars while building
    assert (classified.permanent, classified.retry_after) == (permanent, retry_after)
    assert says in str(classified).lower()


def test_retry_after_in_whole_seconds_is_understood_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PTB_TIMEDELTA")
    with pytest.warns(PTBDeprecationWarning):  # PTB 22 itself warns while building it
        error = RetryAfter(5)
    assert classify(error, CHANNEL).retry_after == timedelta(seconds=5)


def test_a_reason_never_carries_the_token() -> None:
    error = NetworkError("httpx.ConnectError: https://api.telegram.org/bot123:secret/sendMessage")
    assert "123:secret" not in str(classify(error, CHANNEL, "123:secret"))
