"""The live status board: what channel members read on the pinned message, and how often Telegram is asked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcasters import Deps
from broadcasters._telegram_board import render_board
from broadcasters._telegram_board_keeper import BOARD, BOARD_EVERY, BoardKeeper
from broadcasters._telegram_text import plain_length
from broadcasters.telegram import BOARD_SHARE, SEND_GAP, Channel, open_targets
from status import db, outbox, store
from status.automatic import Automatic
from status.commands import NewIncident
from status.config import Config, load_config_text
from status.core import Core
from status.model import PROBER, Component, State
from status.schema import receipts
from status.services import build_services
from status.vocabulary import ComponentStatus, Impact, IncidentStatus
from tests.conftest import MONDAY_MORNING, TEST_CONFIG
from tests.fakes.telegram import ChatMessage, FakeTelegram, fake_telegram
from tests.fakes.telegram_html import parse_html

pytestmark = pytest.mark.anyio

CONFIG = load_config_text(TEST_CONFIG, "t.toml")
CHANNEL = "@statusemeterai"
WIB = ZoneInfo("Asia/Jakarta")


class SteppingClock:
    """A manual clock whose sleeps return at once, moving time on: pacing without waiting."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> None:
        self._now += by

    async def sleep_until(self, at: datetime) -> None:
        self._now = max(self._now, at)


# ── what members read (pure rendering) ──────────────────────────────────────────────────


def state_of(
    config: Config,
    statuses: dict[str, str] | None = None,
    queues: dict[str, dict[str, Any]] | None = None,
) -> State:
    statuses = statuses or {}
    ids = [(c.id, c.name, "service") for c in config.components]
    ids += [(b.id, b.name, "branch") for b in config.branches]
    components = tuple(
        Component(
            cid,
            name,
            "",
            "",
            kind,
            i,
            ComponentStatus(statuses.get(cid, "operational")),
            ComponentStatus(statuses.get(cid, "operational")),
            MONDAY_MORNING,
            MONDAY_MORNING,
        )
        for i, (cid, name, kind) in enumerate(ids)
    )
    return State(components, (), (), 1, MONDAY_MORNING, MONDAY_MORNING, queues or {})


def queue(length: int, wait_s: int | None = None, *, stalled: bool = False) -> dict[str, Any]:
    return {
        "read_at": MONDAY_MORNING,
        "length": length,
        "estimated_wait_s": wait_s,
        "stalled": stalled,
        "last_move_at": MONDAY_MORNING - timedelta(minutes=25),
    }


def test_the_board_lists_services_then_branches_by_region_in_their_own_zones() -> None:
    state = state_of(CONFIG, queues={"kcu-medan": queue(37, 1500)})
    board = render_board(state, CONFIG, ["*"], MONDAY_MORNING, "id", WIB)
    assert board.text == "\n".join(
        [
            "📋 <b>Status e-Meterai</b>",
            "🟢 Semua layanan berjalan normal",
            "",
            "<b>Layanan e-Meterai</b>",
            "🟢 Pembelian e-Meterai: Normal",
            "🟢 Pembubuhan e-Meterai: Normal",
            "",
            "<b>Sumatera Utara</b>",
            "🟢 KCU Medan · Buka sampai 16.00 WIB · antrean 37 · ±25 mnt",
            "",
            "<b>Bali</b>",
            "🟢 KCU Denpasar · Buka sampai 16.00 WITA",
            "",
            "<b>Papua</b>",
            "🟢 KCU Jayapura · Buka 24 jam",
            "",
            "Diperbarui 10.00 WIB · https://status.example.id",
        ]
    )


def test_an_outage_a_stalled_queue_and_a_closed_branch_read_as_such_in_english() -> None:
    saturday_evening = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # 19.00 WIB, 20.00 WITA
    state = state_of(
        CONFIG,
        {"emeterai-purchase": "major_outage", "kcu-jayapura": "partial_outage"},
        {"kcu-jayapura": queue(80, stalled=True), "kcu-medan": queue(12, 300)},
    )
    text = render_board(state, CONFIG, ["*"], saturday_evening, "en", WIB).text
    lines = text.split("\n")
    assert lines[1] == "🔴 Major System Outage"
    assert "🔴 Pembelian e-Meterai: Major outage" in lines
    # Closed is not down, and a closed branch's old queue is not shown.
    assert "🌙 KCU Medan · Closed, opens Monday 2026-11-23 07:30 WIB" in lines
    assert "🌙 KCU Denpasar · Closed, opens Monday 2026-11-23 07:30 WITA" in lines
    assert (
        "🟠 KCU Jayapura: Partial outage · Open 24 hours · queue 80 · stalled since 11:35 WIT"
        in lines
    )
    assert lines[-1] == "Updated 19:00 WIB · https://status.example.id"


def test_a_stalled_queue_at_a_working_branch_is_flagged() -> None:
    state = state_of(CONFIG, queues={"kcu-medan": queue(55, stalled=True)})
    text = render_board(state, CONFIG, ["kcu-medan"], MONDAY_MORNING, "id", WIB).text
    assert "⚠️ KCU Medan · Buka sampai 16.00 WIB · antrean 55 · macet sejak 09.35 WIB" in text


def test_a_region_channel_shows_only_its_branches() -> None:
    text = render_board(state_of(CONFIG), CONFIG, ["region:Bali"], MONDAY_MORNING, "id", WIB).text
    assert "KCU Denpasar" in text
    assert "KCU Medan" not in text
    assert "Pembelian e-Meterai" not in text


def hostile_config() -> Config:
    text = TEST_CONFIG.replace('name = "KCU Medan"', """name = 'KCU <b>Medan</b> & "Pusat"'""")
    text = text.replace('region = "Bali"', 'region = "Bali <Timur> & Co"')
    text = text.replace('name = "Pembelian e-Meterai"', 'name = "Beli <i>e-Meterai</i>"')
    return load_config_text(text, "hostile.toml")


def test_names_from_config_are_escaped() -> None:
    config = hostile_config()
    text = render_board(state_of(config), config, ["*"], MONDAY_MORNING, "id", WIB).text
    plain, entities = parse_html(text)  # Telegram would refuse a stray tag
    assert "Beli <i>e-Meterai</i>: Normal" in plain
    assert 'KCU <b>Medan</b> & "Pusat" · Buka' in plain
    assert "Bali <Timur> & Co" in plain
    assert {e["type"] for e in entities} == {"bold"}


def many_branches_config(count: int) -> Config:
    branches = "\n".join(
        f'[[branch]]\nid = "kc-{i:04d}"\nname = "Kantor Cabang Pembantu Nomor {i:04d} '
        f'Kabupaten Dengan Nama Yang Sangat Panjang"\nregion = "Wilayah {i % 7}"\n'
        f'timezone = "Asia/Makassar"\nhours = "Mon-Fri 07:30-16:00"\n'
        for i in range(count)
    )
    return load_config_text(TEST_CONFIG + branches, "many.toml")


def test_four_hundred_branches_are_trimmed_to_one_message_and_counted() -> None:
    config = many_branches_config(400)
    queues = {f"kc-{i:04d}": queue(100 + i, 3600) for i in range(400)}
    text = render_board(
        state_of(config, queues=queues), config, ["*"], MONDAY_MORNING, "id", WIB
    ).text
    assert plain_length(text) <= 4096
    plain, _ = parse_html(text)
    shown = sum(1 for line in plain.split("\n")[2:] if line.startswith(("🟢", "🌙", "⚠️", "🔴")))
    more = next(line for line in plain.split("\n") if line.startswith("…dan "))
    assert more == f"…dan {2 + 3 + 400 - shown} lainnya"
    assert plain.endswith("Diperbarui 10.00 WIB · https://status.example.id")
    assert "\n\n\n" not in plain


# ── what Telegram receives (fake Bot API, real database) ───────────────────────────────


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(MONDAY_MORNING)


@pytest.fixture
def telegram(clock: SteppingClock) -> Iterator[FakeTelegram]:
    with fake_telegram(clock=lambda: clock.now().timestamp()) as fake:
        fake.add_channel(CHANNEL, chat_id=-1001234567890, title="Status e-Meterai")
        yield fake


@pytest.fixture
async def core(engine: AsyncEngine, clock: SteppingClock) -> Core:
    services = build_services(CONFIG, engine, clock)
    async with services.core.transaction() as tx:
        await services.core.sync_components(tx)
    return services.core


@dataclass
class Board:
    channel: Channel
    keeper: BoardKeeper


@asynccontextmanager
async def live_board(
    fake: FakeTelegram,
    engine: AsyncEngine,
    clock: SteppingClock,
    *,
    components: Sequence[str] = ("*",),
    config: Config = CONFIG,
) -> AsyncIterator[Board]:
    channel = {"chat": CHANNEL, "live_board": True, "components": list(components)}
    doc = {"telegram": {"api_base_url": f"{fake.url}/bot", "channel": [channel]}}
    environ = {"SIARAN_TELEGRAM_TOKEN": fake.token}
    async with httpx.AsyncClient() as http:
        deps = Deps(clock, http, config, environ, engine=engine)
        async with open_targets(doc, deps, keep_boards=False) as (opened,):
            yield Board(opened, BoardKeeper(opened, engine))


async def tick(board: Board, clock: SteppingClock, seconds: float = 1.0) -> bool:
    """One poll interval passes and the keeper makes its pass, as its loop would."""
    clock.advance(timedelta(seconds=seconds))
    return await board.keeper.step()


def shown(fake: FakeTelegram) -> ChatMessage:
    """The pinned board (an incident's first post may be pinned too)."""
    (board,) = [m for m in fake.pinned(CHANNEL) if m.text.startswith("📋")]
    return board


def edits(fake: FakeTelegram) -> int:
    return sum(1 for c in fake.calls("editMessageText") if c.status == 200)


async def current_text(engine: AsyncEngine, clock: SteppingClock, config: Config = CONFIG) -> str:
    async with db.read(engine) as conn:
        state = await store.load_state(conn, clock.now())
    board = render_board(state, config, ["*"], clock.now(), "id", WIB)
    return parse_html(board.body)[0]


async def set_queue(core: Core, branch: str, serving: int, issued: int) -> None:
    async with core.transaction() as tx:
        await Automatic(core).set_queue(tx, branch, serving, issued, 2, PROBER)


def outage() -> NewIncident:
    return NewIncident(
        "Pembelian gagal",
        IncidentStatus.INVESTIGATING,
        Impact.CRITICAL,
        "Server penerbit tidak merespons.",
        {"emeterai-purchase": ComponentStatus.MAJOR_OUTAGE},
    )


async def test_the_board_is_posted_and_pinned_silently(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock, core: Core
) -> None:
    async with live_board(telegram, engine, clock) as board:
        assert await board.keeper.step()
    message = shown(telegram)
    assert message.disable_notification
    assert message.text.startswith("📋 Status e-Meterai\n🟢 Semua layanan berjalan normal")
    (pin,) = telegram.calls("pinChatMessage")
    assert pin.params["disable_notification"] is True
    async with db.read(engine) as conn:
        kept = await conn.execute(select(receipts.c.receipt).where(receipts.c.incident_id == BOARD))
        assert kept.scalar() == str(message.message_id)


async def test_a_burst_of_twenty_changes_makes_at_most_two_edits_showing_the_last(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock, core: Core
) -> None:
    async with live_board(telegram, engine, clock) as board:
        await board.keeper.step()
        for n in range(20):
            await set_queue(core, "kcu-medan", 10, 30 + n)
            await tick(board, clock, 0.3)
        for _ in range(6):
            await tick(board, clock)
    assert 1 <= edits(telegram) <= 2
    assert shown(telegram).text.startswith(await current_text(engine, clock))
    assert "antrean 39" in shown(telegram).text
    assert len(telegram.messages(CHANNEL)) == 1
    assert len(telegram.calls("pinChatMessage")) == 1


async def test_an_outage_on_the_board(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock, core: Core
) -> None:
    async with live_board(telegram, engine, clock) as board:
        await board.keeper.step()
        async with core.transaction() as tx:
            await core.create_incident(tx, outage(), PROBER)
        await tick(board, clock, 5)
    lines = shown(telegram).text.split("\n")
    assert lines[1] == "🔴 Gangguan besar"
    assert "🔴 Pembelian e-Meterai: Gangguan total" in lines


async def test_news_that_changes_nothing_on_the_board_makes_no_edit(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock, core: Core
) -> None:
    async with live_board(telegram, engine, clock) as board:
        await board.keeper.step()
        async with core.transaction() as tx:  # a plain notice: statuses stay operational
            cmd = NewIncident(
                "Meterai fisik juga diterima",
                IncidentStatus.INVESTIGATING,
                Impact.NONE,
                "Panitia menerima meterai tempel.",
                {"kcu-medan": ComponentStatus.OPERATIONAL},
            )
            await core.create_incident(tx, cmd, PROBER)
        for _ in range(10):
            await tick(board, clock)
    assert edits(telegram) == 0
    assert not [c for c in telegram.calls("editMessageText") if c.status != 200]


async def test_news_for_what_the_channel_does_not_follow_is_not_even_rendered(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock, core: Core
) -> None:
    async with live_board(telegram, engine, clock, components=["region:Bali"]) as board:
        await board.keeper.step()
        await set_queue(core, "kcu-medan", 10, 50)
        assert not await tick(board, clock, 5)
        await set_queue(core, "kcu-denpasar", 10, 50)
        assert await tick(board, clock, 5)
    assert "antrean 40" in shown(telegram).text


async def test_a_branch_opening_changes_the_board_with_no_event(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock, core: Core
) -> None:
    clock.advance(timedelta(hours=-3, minutes=-40))  # Monday 06.20 WIB: Medan opens at 07.30
    async with live_board(telegram, engine, clock, components=["kcu-medan"]) as board:
        await board.keeper.step()
        assert "KCU Medan · Tutup, buka lagi Senin 23-11-2026 07.30 WIB" in shown(telegram).text
        assert not await tick(board, clock, 60)
        assert await tick(board, clock, 69 * 60)
    assert "🟢 KCU Medan · Buka sampai 16.00 WIB" in shown(telegram).text
    assert edits(telegram) == 1


async def test_a_board_deleted_by_hand_is_posted_again_and_pinned(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock, core: Core
) -> None:
    async with live_board(telegram, engine, clock) as board:
        await board.keeper.step()
        first = shown(telegram).message_id
        telegram.delete_message(CHANNEL, first)
        await set_queue(core, "kcu-medan", 10, 30)
        await tick(board, clock, 5)
    again = shown(telegram)
    assert again.message_id != first
    assert "antrean 20" in again.text
    assert len(telegram.calls("pinChatMessage")) == 2
    async with db.read(engine) as conn:
        kept = await conn.execute(select(receipts.c.receipt).where(receipts.c.incident_id == BOARD))
        assert kept.scalar() == str(again.message_id)


async def test_after_a_restart_the_same_message_is_edited(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock, core: Core
) -> None:
    async with live_board(telegram, engine, clock) as board:
        await board.keeper.step()
        await board.keeper.release()  # a clean shutdown
    await set_queue(core, "kcu-medan", 10, 30)
    async with live_board(telegram, engine, clock) as restarted:
        assert await tick(restarted, clock, 60)
    assert len(telegram.messages(CHANNEL)) == 1
    assert "antrean 20" in shown(telegram).text


async def test_after_a_crash_another_instance_takes_the_board_over_when_the_lease_ends(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock, core: Core
) -> None:
    async with live_board(telegram, engine, clock) as board:
        await board.keeper.step()  # then dies without releasing its lease
    async with live_board(telegram, engine, clock) as other:
        await set_queue(core, "kcu-medan", 10, 30)
        assert not await tick(other, clock, 5)
        assert await tick(other, clock, 30)
    assert len(telegram.messages(CHANNEL)) == 1
    assert "antrean 20" in shown(telegram).text


async def test_posts_go_first_and_the_board_keeps_clear_of_them(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock, core: Core
) -> None:
    async with live_board(telegram, engine, clock) as board:
        await board.keeper.step()
        await set_queue(core, "kcu-medan", 10, 30)
        clock.advance(BOARD_EVERY)
        board.channel._delivering = 1  # a post is waiting for its slot
        assert not await board.keeper.step()
        board.channel._delivering = 0
        assert await board.keeper.step()
        edited = clock.now()
        clock.advance(BOARD_EVERY - SEND_GAP / 2)
        async with core.transaction() as tx:
            await core.create_incident(tx, outage(), PROBER)
        (event,) = [e for e in await outbox.follow(engine, 0) if e.kind == "incident.created"]
        await board.channel.deliver(board.channel.render(event), None)
        assert clock.now() == edited + BOARD_EVERY - SEND_GAP / 2  # the post did not wait
        clock.advance(SEND_GAP / 2)
        assert not await board.keeper.step()  # the board's turn is due, but a post just went
        clock.advance(SEND_GAP / 2)
        assert await board.keeper.step()
    assert "🔴 Pembelian e-Meterai: Gangguan total" in shown(telegram).text


async def test_the_board_leaves_most_of_the_channels_budget_to_posts(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock, core: Core
) -> None:
    async with live_board(telegram, engine, clock) as board:
        await board.keeper.step()
        async with core.transaction() as tx:
            await core.create_incident(tx, outage(), PROBER)
        (event,) = [e for e in await outbox.follow(engine, 0) if e.kind == "incident.created"]
        for _ in range(BOARD_SHARE):  # a busy minute: a dozen posts
            await board.channel.deliver(board.channel.render(event), None)
        clock.advance(BOARD_EVERY)
        assert not await board.keeper.step()
        clock.advance(timedelta(seconds=60) - BOARD_EVERY)
        assert await board.keeper.step()
        times = [c.at for c in telegram.calls() if c.method in ("sendMessage", "editMessageText")]
    assert telegram.statuses()[429] == 0
    assert all(times[i + 20] - times[i] >= 60 for i in range(len(times) - 20))


async def test_names_from_config_reach_telegram_escaped(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock
) -> None:
    config = hostile_config()
    services = build_services(config, engine, clock)
    async with services.core.transaction() as tx:
        await services.core.sync_components(tx)
    async with live_board(telegram, engine, clock, config=config) as board:
        assert await board.keeper.step()
    assert "Beli <i>e-Meterai</i>: Normal" in shown(telegram).text


async def test_a_long_board_fits_telegrams_limit(
    telegram: FakeTelegram, engine: AsyncEngine, clock: SteppingClock
) -> None:
    config = many_branches_config(300)
    services = build_services(config, engine, clock)
    async with services.core.transaction() as tx:
        await services.core.sync_components(tx)
    async with live_board(telegram, engine, clock, config=config) as board:
        assert await board.keeper.step()
    text = shown(telegram).text
    assert len(text.encode("utf-16-le")) // 2 <= 4096
    assert "lainnya" in text
