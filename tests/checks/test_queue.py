"""Branch queues: field mapping, stall detection over time, and fetching from a real server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from status.checks.queue import (
    QueueFetchError,
    QueueFormatError,
    QueueReading,
    QueueState,
    fetch_queue,
    manual_queue_state,
    next_queue_state,
    parse_queue,
    queue_dict,
)
from status.clock import ManualClock
from status.config import Config
from status.demo.simulator import create_simulator
from status.hours import open_state, parse_hours
from status.web.asgi import checks_client
from tests.conftest import free_port, wait_for_port

pytestmark = pytest.mark.anyio

# Monday 23 November 2026, 10:00 WIB.
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
NESTED = {"serving": "data.now", "issued": "data.last", "counters_open": "data.counters"}
TWENTY_MINUTES = timedelta(minutes=20)


def at(minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


# --- parse_queue -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "fields", "expected"),
    [
        ({"serving": 37, "issued": 120, "counters_open": 2}, {}, (37, 120, 2)),
        ({"data": {"now": 37, "last": 120, "counters": 2}}, NESTED, (37, 120, 2)),
        # Only serving and issued mapped: counters_open is looked for at the top level.
        (
            {"data": {"now": 5, "last": 9}, "counters_open": 1},
            {"serving": "data.now", "issued": "data.last"},
            (5, 9, 1),
        ),
        ({"serving": "37", "issued": "0120"}, {}, (37, 120, None)),  # PHP-style strings
        ({"serving": 37, "issued": 120, "counters_open": None}, {}, (37, 120, None)),
        (
            {"branches": [{"now": 4, "last": 11}]},
            {"serving": "branches.0.now", "issued": "branches.0.last"},
            (4, 11, None),
        ),
        ({"serving": 150, "issued": 3}, {}, (150, 3, None)),  # ticket machine reset first
    ],
)
def test_queue_fields_are_read_through_the_mapping(
    doc: object, fields: dict[str, str], expected: tuple[int, int, int | None]
) -> None:
    reading = parse_queue(doc, fields, T0)
    assert (reading.serving, reading.issued, reading.counters_open) == expected
    assert reading.at == T0


@pytest.mark.parametrize(
    ("doc", "fields", "message"),
    [
        (
            {"data": {"last": 120}},
            {"serving": "data.now", "issued": "data.last"},
            'queue JSON has no "data.now" (serving)',
        ),
        ({"serving": 37}, {}, 'queue JSON has no "issued"'),
        ([], {}, 'queue JSON has no "serving"'),
        ({"data": "busy"}, NESTED, 'queue JSON has no "data.now" (serving)'),
        (
            {"data": {"now": 1, "last": 2}},
            NESTED,
            'queue JSON has no "data.counters" (counters_open)',
        ),
        (
            {"serving": 37.5, "issued": 40},
            {},
            'queue JSON "serving" should be a whole number, got 37.5',
        ),
        (
            {"serving": True, "issued": 40},
            {},
            'queue JSON "serving" should be a whole number, got true',
        ),
        (
            {"serving": -1, "issued": 40},
            {},
            'queue JSON "serving" should be a whole number, got -1',
        ),
        (
            {"serving": None, "issued": 40},
            {},
            'queue JSON "serving" should be a whole number, got null',
        ),
        (
            {"data": {"now": "37a", "last": 40, "counters": 1}},
            NESTED,
            'queue JSON "data.now" (serving) should be a whole number, got "37a"',
        ),
        (
            {"serving": 1, "issued": 2, "counters_open": "two"},
            {},
            'queue JSON "counters_open" should be a whole number, got "two"',
        ),
    ],
)
def test_a_bad_queue_document_names_the_path(
    doc: object, fields: dict[str, str], message: str
) -> None:
    with pytest.raises(QueueFormatError) as info:
        parse_queue(doc, fields, T0)
    assert str(info.value) == message


# --- next_queue_state --------------------------------------------------------------------------

Step = tuple[datetime, int, int, bool]  # (at, serving, issued, is_open)


def run(
    steps: Sequence[Step],
    stall_after: timedelta = TWENTY_MINUTES,
    rate_window: timedelta = timedelta(hours=1),
) -> list[QueueState]:
    states: list[QueueState] = []
    state: QueueState | None = None
    for when, serving, issued, is_open in steps:
        reading = QueueReading(serving, issued, 2, when)
        state = next_queue_state(
            state, reading, is_open=is_open, stall_after=stall_after, rate_window=rate_window
        )
        states.append(state)
    return states


def test_a_moving_queue_shows_its_rate_and_wait() -> None:
    states = run([(at(0), 10, 60, True), (at(5), 20, 60, True), (at(10), 30, 60, True)])
    assert [(s.length, s.served_per_hour, s.estimated_wait, s.stalled) for s in states] == [
        (50, None, None, False),  # one sample: no rate yet
        (40, 120.0, timedelta(minutes=20), False),
        (30, 120.0, timedelta(minutes=15), False),
    ]
    assert [s.last_move_at for s in states] == [at(0), at(5), at(10)]


def test_the_rate_only_counts_the_last_window() -> None:
    states = run(
        [
            (at(0), 0, 100, True),
            (at(30), 60, 100, True),
            (at(60), 70, 100, True),
            (at(90), 80, 100, True),
        ]
    )
    assert [s.served_per_hour for s in states] == [None, 120.0, 70.0, 20.0]
    assert states[-1].samples == ((at(30), 60), (at(60), 70), (at(90), 80))


def test_samples_are_thinned_to_about_one_a_minute() -> None:
    states = run([(at(seconds=10 * i), 100 + i, 500, True) for i in range(61)])
    assert [when for when, _serving in states[-1].samples] == [at(m) for m in range(11)]
    assert states[-1].served_per_hour == 360.0


def test_a_rate_needs_a_minute_of_samples() -> None:
    states = run([(at(0), 10, 20, True), (at(seconds=59), 12, 20, True), (at(1), 12, 20, True)])
    assert [s.served_per_hour for s in states] == [None, None, 120.0]


def test_a_queue_that_stops_moving_is_stalled_exactly_at_stall_after() -> None:
    states = run(
        [
            (at(0), 10, 40, True),
            (at(5), 12, 40, True),  # the last move
            (at(15), 12, 41, True),
            (at(24, 59), 12, 42, True),
            (at(25), 12, 42, True),
            (at(40), 12, 45, True),
            (at(41), 13, 45, True),  # moving again
        ]
    )
    assert [s.stalled for s in states] == [False, False, False, False, True, True, False]
    assert [s.last_move_at for s in states] == [at(0), at(5), at(5), at(5), at(5), at(5), at(41)]


def test_a_queue_that_stops_moving_gets_no_wait_estimate_once_its_rate_is_zero() -> None:
    states = run([(at(0), 10, 40, True), (at(30), 10, 40, True), (at(60), 10, 40, True)])
    assert [(s.served_per_hour, s.estimated_wait) for s in states] == [
        (None, None),
        (0.0, None),
        (0.0, None),
    ]


def test_an_empty_queue_is_never_stalled() -> None:
    states = run([(at(minutes), 40, 40, True) for minutes in range(0, 180, 30)])
    assert [s.stalled for s in states] == [False] * 6
    assert {s.estimated_wait for s in states} == {timedelta(0)}


def test_the_stall_clock_starts_when_someone_starts_waiting() -> None:
    states = run(
        [
            (at(0), 40, 40, True),
            (at(30), 40, 41, True),  # a buyer takes a ticket; nobody had been waiting
            (at(49, 59), 40, 41, True),
            (at(50), 40, 41, True),
        ]
    )
    assert [s.stalled for s in states] == [False, False, False, True]


def test_closed_branch_is_never_stalled_and_the_clock_restarts_at_opening() -> None:
    states = run(
        [
            (at(0), 10, 40, True),
            (at(25), 10, 40, True),  # stalled while open
            (at(30), 10, 40, False),  # closing time: not stalled, though nothing moved
            (at(120), 10, 40, False),
            (at(600), 10, 40, True),  # opens again: the clock starts now, not at minute 0
            (at(619, 59), 10, 40, True),
            (at(620), 10, 40, True),
        ]
    )
    assert [s.stalled for s in states] == [False, True, False, False, False, False, True]
    assert states[4].last_move_at == at(600)
    assert states[4].samples == ((at(600), 10),)


def test_a_reset_at_day_start_counts_as_a_move_and_restarts_the_rate() -> None:
    states = run(
        [
            (at(0), 140, 160, True),
            (at(10), 150, 160, True),
            (at(15), 150, 2, True),  # the ticket machine reset first: length 0, not an error
            (at(16), 1, 5, True),  # the caller reset too
            (at(21), 6, 9, True),
        ]
    )
    assert [s.length for s in states] == [20, 10, 0, 4, 3]
    assert [s.served_per_hour for s in states] == [None, 60.0, 40.0, None, 60.0]
    assert [s.last_move_at for s in states] == [at(0), at(10), at(10), at(16), at(21)]
    assert states[2].estimated_wait == timedelta(0)
    assert states[3].samples == ((at(16), 1),)


# --- manual_queue_state and queue_dict ---------------------------------------------------------


def test_staff_entered_numbers_derive_the_same_way_but_never_stall() -> None:
    first = manual_queue_state(37, 120, 2, at(0), None)
    later = manual_queue_state(67, 130, 2, at(30), first)
    idle = manual_queue_state(67, 130, 2, at(120), later)
    assert (later.length, later.served_per_hour, later.estimated_wait) == (
        63,
        60.0,
        timedelta(minutes=63),
    )
    assert (first.source, later.source, idle.stalled) == ("manual", "manual", False)


def test_a_probe_after_staff_numbers_carries_on_from_them() -> None:
    manual = manual_queue_state(10, 30, None, at(0), None)
    probed = next_queue_state(
        manual, QueueReading(20, 30, 1, at(10)), is_open=True, stall_after=TWENTY_MINUTES
    )
    assert (probed.source, probed.served_per_hour, probed.estimated_wait) == (
        "probe",
        60.0,
        timedelta(minutes=10),
    )


@pytest.mark.parametrize(
    ("serving", "issued", "counters", "message"),
    [
        (-1, 10, None, "serving should be a whole number, got -1"),
        (1, True, None, "issued should be a whole number, got True"),
        (1, 10, -2, "counters_open should be a whole number, got -2"),
    ],
)
def test_staff_cannot_enter_impossible_numbers(
    serving: int, issued: int, counters: int | None, message: str
) -> None:
    with pytest.raises(QueueFormatError) as info:
        manual_queue_state(serving, issued, counters, T0, None)
    assert str(info.value) == message


def test_queue_json_shape() -> None:
    states = run([(at(0), 0, 31, True), (at(7), 10, 31, True)])
    assert queue_dict(states[-1], "id") == {
        "serving": 10,
        "issued": 31,
        "counters_open": 2,
        "length": 21,
        "served_per_hour": 85.7,  # 10 in 7 minutes
        "estimated_wait_minutes": 15,  # 14.7 minutes, rounded up
        "stalled": False,
        "last_move_at": "2026-11-23T03:07:00.000Z",
        "read_at": "2026-11-23T03:07:00.000Z",
        "source": "probe",
    }
    assert queue_dict(states[0], "en")["estimated_wait_minutes"] is None
    assert queue_dict(None, "id") is None


# --- fetch_queue against real servers on loopback ----------------------------------------------


@asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Run `app` under uvicorn on 127.0.0.1 in a thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        await wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)


def queue_system() -> Starlette:
    """A branch queue system with every way one goes wrong."""

    async def flat(request: Request) -> Response:
        return JSONResponse({"serving": 37, "issued": 120, "counters_open": 2})

    async def nested(request: Request) -> Response:
        return JSONResponse({"data": {"now": "37", "last": 120, "counters": 2}})

    async def down(request: Request) -> Response:
        return JSONResponse({"error": "maintenance"}, status_code=503)

    async def gateway(request: Request) -> Response:
        return HTMLResponse("<html><body><h1>Antrian</h1></body></html>")

    async def slow(request: Request) -> Response:
        await asyncio.sleep(1.0)
        return JSONResponse({"serving": 1, "issued": 2})

    async def huge(request: Request) -> Response:
        return JSONResponse({"serving": 1, "issued": 2, "padding": "x" * 100_000})

    async def wrong(request: Request) -> Response:
        return JSONResponse({"status": "UP"})

    async def moved(request: Request) -> Response:
        return Response(status_code=302, headers={"location": "/flat"})

    handlers: dict[str, Any] = {
        "flat": flat,
        "nested": nested,
        "down": down,
        "gateway": gateway,
        "slow": slow,
        "huge": huge,
        "wrong": wrong,
        "moved": moved,
    }
    return Starlette(routes=[Route(f"/{name}", h) for name, h in handlers.items()])


@pytest.fixture
async def queue_url(anyio_backend: str) -> AsyncIterator[str]:
    async with serve(queue_system()) as base_url:
        yield base_url


@pytest.fixture
async def http(anyio_backend: str, config: Config) -> AsyncIterator[httpx.AsyncClient]:
    """The client `siaran serve` gives the prober (over status/checks/transport.py)."""
    async with checks_client(config) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "fields"),
    [("/flat", {}), ("/nested", NESTED)],
)
async def test_a_queue_is_fetched_and_mapped(
    queue_url: str, http: httpx.AsyncClient, path: str, fields: dict[str, str]
) -> None:
    reading = await fetch_queue(http, queue_url + path, fields, timedelta(seconds=5), T0)
    assert reading == QueueReading(37, 120, 2, T0)


@pytest.mark.parametrize(
    ("path", "limit", "reason"),
    [
        ("/down", timedelta(seconds=5), "HTTP 503"),
        ("/gateway", timedelta(seconds=5), "not JSON (text/html)"),
        ("/slow", timedelta(seconds=0.2), "timed out after 0.2s"),
        ("/huge", timedelta(seconds=5), "response larger than 64 KiB"),
        ("/moved", timedelta(seconds=5), "HTTP 302"),
    ],
)
async def test_a_broken_queue_system_gives_a_short_reason(
    queue_url: str, http: httpx.AsyncClient, path: str, limit: timedelta, reason: str
) -> None:
    with pytest.raises(QueueFetchError) as info:
        await fetch_queue(http, queue_url + path, {}, limit, T0)
    assert info.value.reason == reason
    assert str(info.value) == reason


async def test_a_queue_system_that_is_not_listening_could_not_be_reached(
    http: httpx.AsyncClient,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/queue"
    with pytest.raises(QueueFetchError) as info:
        await fetch_queue(http, url, {}, timedelta(seconds=5), T0)
    assert info.value.reason == "could not connect"


async def test_a_queue_document_of_the_wrong_shape_is_a_format_error(
    queue_url: str, http: httpx.AsyncClient
) -> None:
    with pytest.raises(QueueFormatError) as info:
        await fetch_queue(http, queue_url + "/wrong", {}, timedelta(seconds=5), T0)
    assert str(info.value) == 'queue JSON has no "serving"'


# --- the demo simulator, end to end ------------------------------------------------------------

MEDAN_HOURS = parse_hours("Mon-Fri 07:30-16:00; Sat 08:00-12:00")
WIB = ZoneInfo("Asia/Jakarta")


async def test_a_frozen_medan_queue_is_stalled_while_open_and_closed_after_hours(
    http: httpx.AsyncClient,
) -> None:
    # Monday 15:50 WIB, ten minutes before closing.
    clock = ManualClock(datetime(2026, 11, 23, 15, 50, tzinfo=WIB))
    stall_after = timedelta(minutes=2)
    state: QueueState | None = None
    seen: list[tuple[str, bool, bool, int]] = []

    async def poll(base_url: str) -> QueueState:
        nonlocal state
        now = clock.now()
        url = f"{base_url}/queues/kcu-medan/nested"
        reading = await fetch_queue(http, url, NESTED, timedelta(seconds=5), now)
        is_open = open_state(MEDAN_HOURS, WIB, now).is_open
        state = next_queue_state(state, reading, is_open=is_open, stall_after=stall_after)
        seen.append(
            (now.astimezone(WIB).strftime("%a %H:%M:%S"), is_open, state.stalled, state.length)
        )
        return state

    async with serve(create_simulator(clock)) as base_url:
        for _ in range(4):  # moving: polled every 30 s
            await poll(base_url)
            clock.advance(timedelta(seconds=30))
        moving = await poll(base_url)
        frozen = await http.post(f"{base_url}/control/queues/kcu-medan", json={"mode": "stalled"})
        assert frozen.status_code == 200
        for _ in range(4):
            clock.advance(timedelta(seconds=30))
            await poll(base_url)
        clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=WIB))  # closing time
        await poll(base_url)
        clock.set(datetime(2026, 11, 24, 7, 30, tzinfo=WIB))  # Tuesday opening, still frozen
        for _ in range(5):
            await poll(base_url)
            clock.advance(timedelta(seconds=30))

    # Two counters, one ticket per 4 s each (the simulator's SERVE_EVERY): 1800 an hour.
    assert (moving.counters_open, moving.served_per_hour, moving.length) == (2, 1800.0, 54)
    assert moving.estimated_wait == timedelta(seconds=108)
    assert seen == [
        ("Mon 15:50:00", True, False, 20),
        ("Mon 15:50:30", True, False, 35),
        ("Mon 15:51:00", True, False, 45),
        ("Mon 15:51:30", True, False, 51),
        ("Mon 15:52:00", True, False, 54),  # the last move; then the queue freezes
        ("Mon 15:52:30", True, False, 56),  # a new ticket every 15 s, nobody served
        ("Mon 15:53:00", True, False, 58),
        ("Mon 15:53:30", True, False, 60),
        ("Mon 15:54:00", True, True, 62),  # two minutes without a move
        ("Mon 16:00:00", False, False, 86),  # closed is closed, not stalled
        ("Tue 07:30:00", True, False, 3806),  # the stall clock restarts at opening
        ("Tue 07:30:30", True, False, 3808),
        ("Tue 07:31:00", True, False, 3810),
        ("Tue 07:31:30", True, False, 3812),
        ("Tue 07:32:00", True, True, 3814),
    ]
