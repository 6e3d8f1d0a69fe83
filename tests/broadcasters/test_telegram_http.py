"""The aiohttp transport under PTB: what the Bot API receives, and how a bad network reads."""

from __future__ import annotations

import asyncio
import email.policy
import socket
from collections.abc import AsyncIterator
from email.parser import BytesParser

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from telegram import Bot, InputFile, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from broadcasters._telegram_http import AiohttpRequest
from tests.fakes.telegram import UNLIMITED, fake_telegram
from tests.fakes.upstream import serve

pytestmark = pytest.mark.anyio
AYU = 1001
TOKEN = "123456:SECRET-token-value"


async def test_a_message_with_a_reply_goes_out_as_telegram_reads_it() -> None:
    with fake_telegram(limits=UNLIMITED) as fake:
        fake.add_user(AYU, "Ayu")
        async with Bot(fake.token, base_url=f"{fake.url}/bot", request=AiohttpRequest()) as bot:
            first = await bot.send_message(
                AYU, "Loket <b>tutup</b> &amp; antre", parse_mode=ParseMode.HTML
            )
            second = await bot.send_message(
                AYU, "Buka lagi", reply_parameters=ReplyParameters(first.message_id)
            )
        sent = fake.messages(AYU)
        assert [m.text for m in sent] == ["Loket tutup & antre", "Buka lagi"]
        assert sent[1].reply_to == first.message_id == second.reply_to_message.message_id  # type: ignore[union-attr]


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_a_server_that_never_answers_is_timed_out(silent_server: int) -> None:
    request = AiohttpRequest(read_timeout=0.3, write_timeout=0.3)
    bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{silent_server}/bot", request=request)
    with pytest.raises(TimedOut):
        await bot.initialize()
    await bot.shutdown()


async def test_a_refused_connection_is_a_network_error_that_never_shows_the_token() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{port}/bot", request=AiohttpRequest())
    with pytest.raises(NetworkError) as caught:
        await bot.initialize()
    await bot.shutdown()
    assert not isinstance(caught.value, TimedOut)
    assert "SECRET" not in str(caught.value)


async def echo(request: Request) -> JSONResponse:
    """The multipart form's fields: name → value, or [filename, content] for a file."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    form = BytesParser(policy=email.policy.default).parsebytes(head + await request.body())
    fields: dict[str, object] = {}
    for part in form.iter_parts():
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True).decode()  # type: ignore[union-attr]
        filename = part.get_filename()
        fields[str(name)] = content if filename is None else [filename, content]
    return JSONResponse({"ok": True, "result": fields})


async def test_a_file_is_sent_as_multipart_with_the_other_fields() -> None:
    app = Starlette(routes=[Route("/bot{token}/sendDocument", echo, methods=["POST"])])
    with serve(app) as url:
        request = AiohttpRequest()
        await request.initialize()
        try:
            data = RequestData(
                [
                    RequestParameter.from_input("chat_id", AYU),
                    RequestParameter.from_input(
                        "document", InputFile(b"antrean 12", filename="antre.txt")
                    ),
                ]
            )
            result = await request.post(f"{url}/bot{TOKEN}/sendDocument", data)
        finally:
            await request.shutdown()
    assert result == {"chat_id": str(AYU), "document": ["antre.txt", "antrean 12"]}
