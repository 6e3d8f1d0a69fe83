"""The fake Bot API, driven through python-telegram-bot's real Bot, answers as Telegram does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.request import HTTPXRequest

from tests.fakes.telegram import UNLIMITED, FakeTelegram, Limits, Rate, fake_telegram
from tests.fakes.upstream import serve

pytestmark = pytest.mark.anyio

CHANNEL = "@statusemeterai"
CHANNEL_ID = -1001234567890
BUDI = 700100200  # a subscriber who talks to the bot in private


@pytest.fixture(autouse=True)
def _timedelta_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without it PTB 22 warns on reading RetryAfter.retry_after, even inside its own
    # constructor, and our filterwarnings=error turns a 429 into PTBDeprecationWarning.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with fake_telegram(limits=UNLIMITED) as fake:
        fake.add_channel(CHANNEL, chat_id=CHANNEL_ID, title="Status e-Meterai")
        fake.add_user(BUDI, "Budi", username="budi_medan")
        yield fake


def open_bot(fake: FakeTelegram, token: str | None = None, read_timeout: float = 5.0) -> Bot:
    """PTB's Bot aimed at the fake. The fake speaks plain http, so the clients skip loading
    the CA bundle, which costs ~0.2 s for each of the two clients a Bot opens."""
    no_tls = {"verify": False}
    return Bot(
        token or fake.token,
        base_url=f"{fake.url}/bot",
        request=HTTPXRequest(read_timeout=read_timeout, httpx_kwargs=no_tls),
        get_updates_request=HTTPXRequest(httpx_kwargs=no_tls),
    )


@pytest.fixture
async def bot(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    async with open_bot(telegram) as bot:
        yield bot


async def test_bot_knows_who_it_is(bot: Bot, telegram: FakeTelegram) -> None:
    assert bot.username == "siaran_test_bot"
    assert bot.id == 123456
    assert [c.method for c in telegram.calls()] == ["getMe"]


async def test_channel_post_reads_back_as_members_see_it(bot: Bot, telegram: FakeTelegram) -> None:
    sent = await bot.send_message(
        CHANNEL,
        "<b>Gangguan</b> pada Pembelian e-Meterai &amp; pembubuhan",
        parse_mode=ParseMode.HTML,
        disable_notification=True,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )

    assert sent.chat.id == CHANNEL_ID
    assert sent.chat.type == "channel"
    assert sent.chat.username == "statusemeterai"
    assert sent.sender_chat is not None
    assert sent.sender_chat.id == CHANNEL_ID
    assert sent.text == "Gangguan pada Pembelian e-Meterai & pembubuhan"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("bold", 0, 8)]
    [seen] = telegram.messages(CHANNEL)
    assert (seen.message_id, seen.text, seen.pinned) == (sent.message_id, sent.text, False)
    assert seen.disable_notification
    assert telegram.messages(CHANNEL_ID) == [seen]
    [call] = telegram.calls("sendMessage")
    assert call.params["chat_id"] == CHANNEL
    assert call.params["link_preview_options"] == {"is_disabled": True}
    assert call.params["disable_notification"] is True


async def test_reply_points_at_the_original(bot: Bot, telegram: FakeTelegram) -> None:
    first = await bot.send_message(CHANNEL_ID, "Gangguan")
    update = await bot.send_message(
        CHANNEL_ID, "Pulih", reply_parameters=ReplyParameters(first.message_id)
    )
    legacy = await bot.send_message(CHANNEL_ID, "Lagi", reply_to_message_id=first.message_id)

    assert update.reply_to_message is not None
    assert update.reply_to_message.text == "Gangguan"
    assert legacy.reply_to_message is not None
    assert legacy.reply_to_message.message_id == first.message_id
    assert [m.reply_to for m in telegram.messages(CHANNEL)] == [None, 1, 1]
    with pytest.raises(BadRequest, match=r"^Message to be replied not found$"):
        await bot.send_message(CHANNEL_ID, "x", reply_parameters=ReplyParameters(99))


async def test_edit_changes_what_members_see(bot: Bot, telegram: FakeTelegram) -> None:
    sent = await bot.send_message(CHANNEL, "Investigating")
    edited = await bot.edit_message_text(
        "<i>Resolved</i>", CHANNEL, sent.message_id, parse_mode="HTML"
    )

    assert isinstance(edited, type(sent))
    assert edited.edit_date is not None
    assert edited.text == "Resolved"
    assert [m.text for m in telegram.messages(CHANNEL)] == ["Resolved"]
    assert telegram.messages(CHANNEL)[0].edit_date is not None


async def test_identical_edit_is_not_modified(bot: Bot) -> None:
    sent = await bot.send_message(CHANNEL, "<b>Same</b>", parse_mode="HTML")
    with pytest.raises(BadRequest) as caught:
        await bot.edit_message_text("<b>Same</b> ", CHANNEL, sent.message_id, parse_mode="HTML")
    assert str(caught.value) == (
        "Message is not modified: specified new message content and reply markup are exactly"
        " the same as a current content and reply markup of the message"
    )
    # Same text without the bold is new content.
    await bot.edit_message_text("Same", CHANNEL, sent.message_id)
    with pytest.raises(BadRequest, match=r"^Message to edit not found$"):
        await bot.edit_message_text("x", CHANNEL, 42)


async def test_pin_and_unpin(bot: Bot, telegram: FakeTelegram) -> None:
    sent = await bot.send_message(CHANNEL, "Gangguan berlangsung")
    assert await bot.pin_chat_message(CHANNEL, sent.message_id, disable_notification=True)
    assert [m.pinned for m in telegram.messages(CHANNEL)] == [True]
    chat = await bot.get_chat(CHANNEL)
    assert chat.pinned_message is not None
    assert chat.pinned_message.message_id == sent.message_id

    assert await bot.unpin_chat_message(CHANNEL, sent.message_id)
    assert telegram.pinned(CHANNEL) == []
    with pytest.raises(BadRequest, match=r"^Message to unpin not found$"):
        await bot.unpin_chat_message(CHANNEL, sent.message_id)
    with pytest.raises(BadRequest, match=r"^Message to pin not found$"):
        await bot.pin_chat_message(CHANNEL, 99)


async def test_too_long_message_is_refused(bot: Bot, telegram: FakeTelegram) -> None:
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(CHANNEL, "x" * 4097)
    assert str(caught.value) == "Message is too long"
    # The limit counts text after parsing: tags and entity spelling are free, emoji count once.
    await bot.send_message(CHANNEL, "<b>" + "&amp;" * 4096 + "</b>", parse_mode="HTML")
    await bot.send_message(CHANNEL, "🏟" * 4096)
    await bot.send_message(CHANNEL, "\n" + "x" * 4096 + "\n")  # Telegram trims first
    assert [len(m.text) for m in telegram.messages(CHANNEL)] == [4096, 4096, 4096]


BAD_HTML = [
    ("<x>hi</x>", 'Can\'t parse entities: unsupported start tag "x" at byte offset 0'),
    ("suhu < 30", 'Can\'t parse entities: unsupported start tag "" at byte offset 5'),
    ("<b>tebal", "Can't parse entities: can't find end tag corresponding to start tag b"),
    (
        "<b>a</i>",
        'Can\'t parse entities: unmatched end tag at byte offset 4, expected "</b>", found "</i>"',
    ),
    ("Medan <br> Bali", 'Can\'t parse entities: unsupported start tag "br" at byte offset 6'),
    ("🏟 <b", "Can't parse entities: unclosed start tag at byte offset 5"),  # bytes, not characters
]


async def test_bad_html_is_refused_with_telegrams_words(bot: Bot) -> None:
    # PTB strips "Bad Request: " and capitalize()s the rest, which lowercases tdlib's "Unsupported".
    for html, error in BAD_HTML:
        with pytest.raises(BadRequest) as caught:
            await bot.send_message(CHANNEL, html, parse_mode="HTML")
        assert str(caught.value) == error, html


async def test_html_that_telegram_accepts(bot: Bot) -> None:
    sent = await bot.send_message(
        CHANNEL,
        'PT Pos & Giro &lt;ok&gt; <a href="https://status.example.id/i/7">rincian</a>'
        ' <span class="tg-spoiler">s</span> <tg-spoiler>t</tg-spoiler> <blockquote>q</blockquote>'
        ' <pre><code class="language-json">{}</code></pre>',
        parse_mode="HTML",
    )
    assert sent.text == "PT Pos & Giro <ok> rincian s t q {}"
    kinds = [(e.type, e.offset, e.length, e.url, e.language) for e in sent.entities]
    assert kinds == [
        ("text_link", 19, 7, "https://status.example.id/i/7", None),
        ("spoiler", 27, 1, None, None),
        ("spoiler", 29, 1, None, None),
        ("blockquote", 31, 1, None, None),
        ("pre", 33, 2, None, "json"),
    ]


async def test_blocked_user_raises_forbidden(bot: Bot, telegram: FakeTelegram) -> None:
    await bot.send_message(BUDI, "Selamat datang")
    telegram.block(BUDI)
    with pytest.raises(Forbidden) as caught:
        await bot.send_message(BUDI, "Gangguan")
    assert str(caught.value) == "Forbidden: bot was blocked by the user"
    assert [m.text for m in telegram.messages(BUDI)] == ["Selamat datang"]


async def test_bot_removed_from_channel_raises_forbidden(bot: Bot, telegram: FakeTelegram) -> None:
    telegram.remove_bot(CHANNEL)
    with pytest.raises(Forbidden, match=r"^Forbidden: bot is not a member of the channel chat$"):
        await bot.send_message(CHANNEL, "x")


async def test_unknown_chat_is_bad_request(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"^Chat not found$"):
        await bot.send_message("@tidakada", "x")
    with pytest.raises(BadRequest, match=r"^Chat not found$"):
        await bot.send_message(-100999, "x")
    with pytest.raises(BadRequest, match=r"^Chat not found$"):
        await bot.send_message("@budi_medan", "people are not reachable by @username")


async def test_migrated_group_raises_chat_migrated(bot: Bot, telegram: FakeTelegram) -> None:
    group = telegram.add_group("Petugas KCU Medan", chat_id=-4012345)
    new_id = telegram.migrate(group, new_chat_id=-1009876543210)
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(group, "x")
    assert caught.value.new_chat_id == new_id == -1009876543210
    sent = await bot.send_message(new_id, "x")
    assert sent.chat.type == "supergroup"
    assert sent.chat.title == "Petugas KCU Medan"


async def test_flooding_the_bot_raises_retry_after() -> None:
    now = [1000.0]
    limits = Limits(bot=Rate(5, 1.0), group_chat=None)
    with fake_telegram(limits=limits, clock=lambda: now[0]) as telegram:
        telegram.add_channel(CHANNEL)
        async with open_bot(telegram) as bot:
            for n in range(5):
                await bot.send_message(CHANNEL, f"pesan {n}")
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(CHANNEL, "satu terlalu banyak")
            assert caught.value.retry_after == timedelta(seconds=1)
            now[0] += 0.5  # still inside the penalty: every call is refused
            with pytest.raises(RetryAfter):
                await bot.send_message(CHANNEL, "masih terlalu cepat")
            now[0] += 0.5
            await bot.send_message(CHANNEL, "sudah boleh")
        assert telegram.statuses()[429] == 2
        assert len(telegram.messages(CHANNEL)) == 6


async def test_private_chat_allows_one_message_a_second() -> None:
    now = [50.0]
    with fake_telegram(clock=lambda: now[0]) as telegram:
        telegram.add_user(BUDI)
        async with open_bot(telegram) as bot:
            await bot.send_message(BUDI, "satu")
            with pytest.raises(RetryAfter):
                await bot.send_message(BUDI, "dua")
            telegram.flood(retry_after=5, chat=BUDI)
            now[0] += 1
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(BUDI, "dua")
            assert caught.value.retry_after == timedelta(seconds=4)


async def test_channel_takes_twenty_posts_a_minute() -> None:
    now = [0.0]
    with fake_telegram(clock=lambda: now[0]) as telegram:  # Telegram's published limits
        telegram.add_channel(CHANNEL)
        async with open_bot(telegram) as bot:
            for n in range(20):
                now[0] += 0.1
                await bot.send_message(CHANNEL, f"pembaruan {n}")
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(CHANNEL, "ke-21")
            assert caught.value.retry_after == timedelta(seconds=59)  # 58.1 s, rounded up


async def test_flood_answer_has_telegrams_body(telegram: FakeTelegram) -> None:
    telegram.flood(retry_after=5)
    async with httpx.AsyncClient(base_url=f"{telegram.url}/bot{telegram.token}") as client:
        response = await client.post("/sendMessage", json={"chat_id": CHANNEL, "text": "x"})
    assert response.status_code == 429
    assert response.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 5",
        "parameters": {"retry_after": 5},
    }


async def test_get_updates_returns_injected_commands(bot: Bot, telegram: FakeTelegram) -> None:
    telegram.send_user_message(BUDI, "/subscribe kcu-medan")
    telegram.send_user_message(BUDI, "terima kasih")

    first, second = await bot.get_updates(timeout=0)
    assert first.message is not None
    assert first.message.text == "/subscribe kcu-medan"
    assert first.message.parse_entities() == {first.message.entities[0]: "/subscribe"}
    assert first.message.entities[0].type == "bot_command"
    assert first.effective_user is not None
    assert (first.effective_user.id, first.effective_user.username) == (BUDI, "budi_medan")
    assert first.effective_chat is not None
    assert first.effective_chat.type == "private"
    assert second.update_id == first.update_id + 1

    assert [u.update_id for u in await bot.get_updates(offset=second.update_id)] == [
        second.update_id
    ]
    assert await bot.get_updates(offset=second.update_id + 1, timeout=0) == ()
    assert telegram.pending_updates() == []


async def test_long_poll_waits_for_the_next_update(bot: Bot, telegram: FakeTelegram) -> None:
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, telegram.send_user_message, BUDI, "/start")
    started = loop.time()
    [update] = await bot.get_updates(timeout=5)
    assert 0.15 < loop.time() - started < 2
    assert update.message is not None
    assert update.message.text == "/start"

    started = loop.time()
    quick = timedelta(milliseconds=300)
    assert await bot.get_updates(offset=update.update_id + 1, timeout=quick) == ()
    assert loop.time() - started >= 0.3


async def test_button_press_arrives_as_callback_query(bot: Bot, telegram: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton("Medan", callback_data="sub:kcu-medan")]]
    )
    sent = await bot.send_message(BUDI, "Pilih kantor", reply_markup=keyboard)
    assert sent.reply_markup == keyboard
    with pytest.raises(ValueError, match="offers no button"):
        telegram.press_button(BUDI, sent.message_id, "sub:kcu-bali")

    query_id = telegram.press_button(BUDI, sent.message_id, "sub:kcu-medan")
    [update] = await bot.get_updates()
    assert update.callback_query is not None
    assert update.callback_query.id == query_id
    assert update.callback_query.data == "sub:kcu-medan"
    assert update.callback_query.from_user.id == BUDI
    assert await bot.answer_callback_query(query_id, text="Berlangganan")
    with pytest.raises(BadRequest, match=r"^Query is too old"):
        await bot.answer_callback_query(query_id)
    # Editing the text without reply_markup takes the keyboard away, as in Telegram.
    await bot.edit_message_text("Berlangganan KCU Medan", BUDI, sent.message_id)
    assert telegram.messages(BUDI)[0].reply_markup is None


async def test_webhook_receives_updates_instead_of_polling(
    bot: Bot, telegram: FakeTelegram
) -> None:
    received: list[tuple[dict[str, object], str | None]] = []

    async def hook(request: Request) -> Response:
        received.append(
            (await request.json(), request.headers.get("x-telegram-bot-api-secret-token"))
        )
        return Response(status_code=200)

    with serve(Starlette(routes=[Route("/telegram", hook, methods=["POST"])])) as sink:
        assert await bot.set_webhook(f"{sink}/telegram", secret_token="rahasia")
        with pytest.raises(Conflict, match=r"can't use getUpdates method while webhook is active"):
            await bot.get_updates()
        telegram.send_user_message(BUDI, "/start")
        for _ in range(250):
            if received:
                break
            await asyncio.sleep(0.02)
        info = await bot.get_webhook_info()
    [(update, secret)] = received
    assert secret == "rahasia"
    assert update["message"]["text"] == "/start"  # type: ignore[index]  # JSON from the fake
    assert info.url == f"{sink}/telegram"
    assert info.pending_update_count == 0
    assert await bot.delete_webhook()
    assert telegram.webhook is None


async def test_outage_answers_bad_gateway(bot: Bot, telegram: FakeTelegram) -> None:
    telegram.outage = "bad_gateway"
    with pytest.raises(NetworkError) as caught:
        await bot.send_message(CHANNEL, "x")
    assert type(caught.value) is NetworkError
    assert str(caught.value).startswith("Bad Gateway (502). Parsing the server response b'<html>")
    telegram.outage = None
    await bot.send_message(CHANNEL, "x")


async def test_hanging_api_times_out(telegram: FakeTelegram) -> None:
    async with open_bot(telegram, read_timeout=0.3) as bot:
        telegram.outage = "timeout"
        with pytest.raises(TimedOut, match=r"^Timed out$"):
            await bot.send_message(CHANNEL, "x")
        telegram.outage = None
        await bot.send_message(CHANNEL, "y")
    assert [m.text for m in telegram.messages(CHANNEL)] == ["y"]  # the held one never arrived


async def test_slow_api_times_out_but_still_posts(telegram: FakeTelegram) -> None:
    telegram.latency["sendMessage"] = 0.5
    async with open_bot(telegram, read_timeout=0.2) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(CHANNEL, "x")
        await asyncio.sleep(0.5)
    assert [m.text for m in telegram.messages(CHANNEL)] == ["x"]  # a retry would duplicate it


async def test_unknown_token_is_invalid_token(telegram: FakeTelegram) -> None:
    with pytest.raises(InvalidToken, match=r"^The token `999:WRONG` was rejected by the server.$"):
        async with open_bot(telegram, token="999:WRONG"):
            pass
    assert telegram.calls("getMe")[0].status == 401


async def test_scripted_failure_comes_first(bot: Bot, telegram: FakeTelegram) -> None:
    telegram.fail_next("sendMessage", 500, "Internal Server Error")
    with pytest.raises(NetworkError, match=r"^Internal Server Error$"):
        await bot.send_message(CHANNEL, "x")
    await bot.send_message(CHANNEL, "x")
    assert [c.status for c in telegram.calls("sendMessage")] == [500, 200]


async def test_commands_round_trip(bot: Bot, telegram: FakeTelegram) -> None:
    commands = [BotCommand("start", "Mulai"), BotCommand("subscribe", "Langganan kantor")]
    assert await bot.set_my_commands(commands)
    assert await bot.get_my_commands() == tuple(commands)
    assert telegram.my_commands() == [
        {"command": "start", "description": "Mulai"},
        {"command": "subscribe", "description": "Langganan kantor"},
    ]


async def test_json_and_multipart_bodies_work_too(telegram: FakeTelegram) -> None:
    async with httpx.AsyncClient(base_url=f"{telegram.url}/bot{telegram.token}") as client:
        as_json = await client.post("/sendMessage", json={"chat_id": CHANNEL_ID, "text": "json"})
        as_multipart = await client.post(
            "/SENDMESSAGE",
            data={"chat_id": str(CHANNEL_ID), "text": "multipart", "disable_notification": "true"},
            files={"unused": ("a.txt", b"x")},
        )
        unknown = await client.post("/sendSticker", json={})
    assert as_json.json()["result"]["text"] == "json"
    assert as_multipart.json()["result"]["text"] == "multipart"
    assert telegram.calls()[1].params["disable_notification"] is True
    assert (unknown.status_code, unknown.json()["description"]) == (404, "Not Found")
