"""Tests for status/demo: the simulator behind `siaran demo` and the demo and starter configs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import httpx
import pytest
from starlette.applications import Starlette

import broadcasters
from status.cli import demo_config
from status.clock import ManualClock
from status.config import load_config_text
from status.demo.simulator import DEMO_SCRIPT, ScriptStep, create_simulator
from status.hours import open_state

# 05:00 WIB on the first morning of the 2024 CASN rush in Medan.
OPENING = datetime(2024, 9, 1, 22, 0, tzinfo=UTC)
SIMULATOR_URL = "http://127.0.0.1:43123"
PUBLIC_URL = "http://127.0.0.1:8080"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(OPENING)


@pytest.fixture
def simulator(clock: ManualClock) -> Starlette:
    return create_simulator(clock)


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://simulator")


async def queue_numbers(client: httpx.AsyncClient, branch_id: str) -> tuple[int, int, int]:
    response = await client.get(f"/queues/{branch_id}")
    assert response.status_code == 200
    body = response.json()
    return body["serving"], body["issued"], body["counters_open"]


@pytest.mark.anyio
@pytest.mark.parametrize("service", ["purchase", "stamping", "download"])
async def test_healthy_services_answer_up(simulator: Starlette, service: str) -> None:
    async with client_for(simulator) as client:
        response = await client.get(f"/api/{service}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "UP",
        "data": {"available": True},
        "stock": 125000,
        "errors": [],
    }


@pytest.mark.anyio
async def test_a_service_set_down_answers_503_and_comes_back_up(simulator: Starlette) -> None:
    async with client_for(simulator) as client:
        set_down = await client.post("/control/services/purchase", json={"mode": "down"})
        down = await client.get("/api/purchase/health")
        others = await client.get("/api/stamping/health")
        await client.post("/control/services/purchase", json={"mode": "up"})
        up = await client.get("/api/purchase/health")
    assert set_down.status_code == 200
    assert down.status_code == 503
    assert down.json() == {"status": "DOWN", "errors": ["upstream timeout"]}
    assert others.status_code == 200
    assert up.status_code == 200
    assert up.json()["status"] == "UP"


@pytest.mark.anyio
async def test_html_mode_returns_200_with_an_html_page_not_json(simulator: Starlette) -> None:
    async with client_for(simulator) as client:
        await client.post("/control/services/stamping", json={"mode": "html"})
        response = await client.get("/api/stamping/health")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()


@pytest.mark.anyio
async def test_error_mode_returns_500_with_an_html_page(simulator: Starlette) -> None:
    async with client_for(simulator) as client:
        await client.post("/control/services/download", json={"mode": "error"})
        response = await client.get("/api/download/health")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.anyio
async def test_slow_mode_answers_healthy_only_after_the_delay(simulator: Starlette) -> None:
    async with client_for(simulator) as client:
        await client.post("/control/services/purchase", json={"mode": "slow", "delay": 0.2})
        started = time.perf_counter()
        response = await client.get("/api/purchase/health")
        took = time.perf_counter() - started
    assert took >= 0.2
    assert response.status_code == 200
    assert response.json()["status"] == "UP"


@pytest.mark.anyio
async def test_a_moving_queue_serves_more_as_the_clock_advances_and_issued_stays_ahead(
    simulator: Starlette, clock: ManualClock
) -> None:
    seen: list[tuple[int, int, int]] = []
    async with client_for(simulator) as client:
        for _ in range(60):
            seen.append(await queue_numbers(client, "kcu-medan"))
            clock.advance(timedelta(seconds=5))
    servings = [serving for serving, _, _ in seen]
    issueds = [issued for _, issued, _ in seen]
    assert servings == sorted(servings)
    assert issueds == sorted(issueds)
    assert all(issued >= serving for serving, issued, _ in seen)
    counters = seen[0][2]
    # One ticket every 4 s per open counter: 5 minutes serve 75 tickets per counter.
    assert servings[-1] - servings[0] == int(59 * 5 * counters / 4)
    # Early on people arrive faster than they are served, so the queue builds.
    assert issueds[12] - servings[12] > issueds[0] - servings[0]


@pytest.mark.anyio
async def test_a_stalled_queue_stops_serving_while_tickets_are_still_issued(
    simulator: Starlette, clock: ManualClock
) -> None:
    async with client_for(simulator) as client:
        clock.advance(timedelta(seconds=30))
        stalled = await client.post("/control/queues/kcu-medan", json={"mode": "stalled"})
        serving_at_stall, issued_at_stall, _ = await queue_numbers(client, "kcu-medan")
        clock.advance(timedelta(minutes=10))
        serving_later, issued_later, _ = await queue_numbers(client, "kcu-medan")
        await client.post("/control/queues/kcu-medan", json={"mode": "moving"})
        clock.advance(timedelta(seconds=20))
        serving_resumed, issued_resumed, _ = await queue_numbers(client, "kcu-medan")
    assert stalled.status_code == 200
    assert stalled.json()["mode"] == "stalled"
    assert serving_later == serving_at_stall
    assert issued_later > issued_at_stall
    assert serving_resumed > serving_later
    assert issued_resumed >= issued_later


@pytest.mark.anyio
async def test_closing_every_counter_stops_serving(
    simulator: Starlette, clock: ManualClock
) -> None:
    async with client_for(simulator) as client:
        await client.post("/control/queues/kc-makassar", json={"counters_open": 0})
        before = await queue_numbers(client, "kc-makassar")
        clock.advance(timedelta(minutes=5))
        after = await queue_numbers(client, "kc-makassar")
    assert after[0] == before[0]
    assert after[2] == 0


@pytest.mark.anyio
async def test_the_nested_shape_mirrors_the_flat_one(
    simulator: Starlette, clock: ManualClock
) -> None:
    async with client_for(simulator) as client:
        clock.advance(timedelta(seconds=47))
        flat = (await client.get("/queues/kcu-denpasar")).json()
        nested = (await client.get("/queues/kcu-denpasar/nested")).json()
    assert nested == {
        "data": {
            "now": flat["serving"],
            "last": flat["issued"],
            "counters": flat["counters_open"],
        }
    }


@pytest.mark.anyio
async def test_queues_show_the_same_numbers_whenever_they_were_first_asked(
    clock: ManualClock,
) -> None:
    early, late = create_simulator(clock), create_simulator(clock)
    async with client_for(early) as early_client, client_for(late) as late_client:
        await queue_numbers(early_client, "kcu-jakarta-pusat")
        clock.advance(timedelta(seconds=90))
        assert await queue_numbers(early_client, "kcu-jakarta-pusat") == await queue_numbers(
            late_client, "kcu-jakarta-pusat"
        )


@pytest.mark.anyio
async def test_the_script_takes_purchase_down_after_60s_and_back_at_120s(
    clock: ManualClock,
) -> None:
    app = create_simulator(clock, DEMO_SCRIPT)
    statuses = {}
    async with client_for(app) as client:
        for second in (59, 60, 119, 120):
            clock.set(OPENING + timedelta(seconds=second))
            statuses[second] = (await client.get("/api/purchase/health")).status_code
    assert statuses == {59: 200, 60: 503, 119: 503, 120: 200}


@pytest.mark.anyio
async def test_the_script_stalls_kcu_medan_at_10s_even_if_nobody_asked_then(
    clock: ManualClock,
) -> None:
    app = create_simulator(clock, DEMO_SCRIPT)
    async with client_for(app) as client:
        clock.set(OPENING + timedelta(seconds=10))
        at_stall = await queue_numbers(client, "kcu-medan")
        clock.set(OPENING + timedelta(seconds=159))
        before_resume = await queue_numbers(client, "kcu-medan")
        clock.set(OPENING + timedelta(seconds=180))
        after_resume = await queue_numbers(client, "kcu-medan")
        state = (await client.get("/control")).json()
    assert before_resume[0] == at_stall[0]
    assert after_resume[0] > before_resume[0]
    assert state["queues"]["kcu-medan"]["mode"] == "moving"
    assert all(step["applied"] for step in state["script"])


def test_a_script_step_with_an_impossible_mode_is_refused(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="queue mode"):
        create_simulator(clock, [ScriptStep(timedelta(seconds=1), "kcu-medan", "down")])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/control/services/purchase", {"mode": "sideways"}, "mode"),
        ("/control/services/purchase", {}, "mode"),
        ("/control/services/purchase", {"mode": "slow", "delay": "soon"}, "delay"),
        ("/control/services/purchase", {"mode": "slow", "delay": -1}, "delay"),
        ("/control/services/purchase", {"mode": "up", "colour": "red"}, "colour"),
        ("/control/services/purchase", ["down"], "body"),
        ("/control/queues/kcu-medan", {"mode": "down"}, "mode"),
        ("/control/queues/kcu-medan", {}, "mode"),
        ("/control/queues/kcu-medan", {"counters_open": -1}, "counters_open"),
        ("/control/queues/kcu-medan", {"counters_open": True}, "counters_open"),
    ],
)
async def test_bad_control_input_is_a_400_naming_the_field(
    simulator: Starlette, path: str, body: object, field: str
) -> None:
    async with client_for(simulator) as client:
        response = await client.post(path, json=body)
        state = (await client.get("/control")).json()
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["field"] == field
    assert error["message"]
    assert state["services"]["purchase"]["mode"] == "up"


@pytest.mark.anyio
async def test_a_body_that_is_not_json_is_a_400(simulator: Starlette) -> None:
    async with client_for(simulator) as client:
        response = await client.post("/control/services/purchase", content=b"down")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


@pytest.mark.anyio
async def test_an_unknown_service_is_a_404_in_the_error_shape(simulator: Starlette) -> None:
    async with client_for(simulator) as client:
        control = await client.post("/control/services/refund", json={"mode": "down"})
        health = await client.get("/api/refund/health")
        bad_branch = await client.get("/queues/KCU_Medan")
    for response in (control, health, bad_branch):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert control.json()["error"]["field"] == "name"


@pytest.mark.anyio
async def test_the_control_page_forms_take_a_service_down_and_stall_a_queue(
    simulator: Starlette,
) -> None:
    async with client_for(simulator) as client:
        await client.get("/queues/kcu-medan")
        page = await client.get("/")
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        down = await client.post(
            "/control/form", content="service=purchase&mode=down", headers=form
        )
        stall = await client.post(
            "/control/form", content="queue=kcu-medan&mode=stalled", headers=form
        )
        bad = await client.post(
            "/control/form", content="service=purchase&mode=%3Cb%3E", headers=form
        )
        state = (await client.get("/control")).json()
    assert page.status_code == 200
    assert '<form method="post" action="/control/form">' in page.text
    assert 'name="queue" value="kcu-medan"' in page.text
    assert "<script" not in page.text
    assert (down.status_code, down.headers["location"]) == (303, "/")
    assert stall.status_code == 303
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "mode"
    assert state["services"]["purchase"]["mode"] == "down"
    assert state["queues"]["kcu-medan"]["mode"] == "stalled"


def demo_text() -> str:
    return files("status.demo").joinpath("demo.toml").read_text(encoding="utf-8")


def starter_text() -> str:
    return files("status.demo").joinpath("starter.toml").read_text(encoding="utf-8")


def fill(text: str) -> str:
    """What `siaran demo` does to the template (status.cli.demo_text), for a Monday."""
    return text.format(simulator=SIMULATOR_URL, public_url=PUBLIC_URL, closed_today="Sun")


def test_the_demo_config_validates_once_its_placeholders_are_filled() -> None:
    filled = fill(demo_text())
    config = load_config_text(filled, "demo.toml", extra_tables=broadcasters.tables())
    assert [b.id for b in config.branches] == [
        "kcu-medan",
        "kcu-denpasar",
        "kcu-jayapura",
        "kcu-jakarta-pusat",
        "kc-makassar",
    ]
    assert {c.id for c in config.components} == {
        "emeterai-purchase",
        "emeterai-stamping",
        "emeterai-download",
    }
    assert config.site.public_url == PUBLIC_URL
    assert all(check.url.startswith(SIMULATOR_URL) for check in config.checks)
    denpasar = config.branch("kcu-denpasar")
    assert denpasar is not None
    assert denpasar.queue_url.endswith("/queues/kcu-denpasar/nested")
    assert denpasar.queue_fields == {
        "serving": "data.now",
        "issued": "data.last",
        "counters_open": "data.counters",
    }


@pytest.mark.anyio
async def test_every_demo_check_and_queue_url_is_a_route_the_simulator_serves(
    simulator: Starlette,
) -> None:
    config = load_config_text(fill(demo_text()), "demo.toml", extra_tables=broadcasters.tables())
    urls = [check.url for check in config.checks]
    urls += [branch.queue_url for branch in config.branches if branch.queue_url]
    async with client_for(simulator) as client:
        statuses = {
            url: (await client.get(url.removeprefix(SIMULATOR_URL))).status_code for url in urls
        }
    assert len(urls) == 6
    assert set(statuses.values()) == {200}


def test_the_starter_config_validates_and_names_the_three_time_zones() -> None:
    config = load_config_text(starter_text(), "siaran.toml")
    assert [(b.id, b.timezone) for b in config.branches] == [
        ("kcu-medan", "Asia/Jakarta"),
        ("kcu-denpasar", "Asia/Makassar"),
        ("kcu-jayapura", "Asia/Jayapura"),
    ]
    assert {check.interval for check in config.checks} == {timedelta(seconds=30)}
    assert "telegram" not in config.document


def test_the_starter_telegram_section_is_valid_once_uncommented() -> None:
    lines = starter_text().splitlines()
    start = lines.index("# [telegram]")
    uncommented = lines[:start] + [line.removeprefix("# ") for line in lines[start:]]
    config = load_config_text("\n".join(uncommented), "siaran.toml", extra_tables=("telegram",))
    assert config.document["telegram"] == {
        "token_env": "SIARAN_TELEGRAM_TOKEN",
        "api_base_url": "https://api.telegram.org/bot",
        "channel": [
            {"chat": "@statusemeterai", "components": ["*"], "language": "id", "live_board": True}
        ],
    }


def test_the_demo_keeps_denpasar_closed_whatever_day_it_runs() -> None:
    for day in range(23, 30):  # a whole week, each day at 10:00 WITA
        now = datetime(2026, 11, day, 2, 0, tzinfo=UTC)
        config = demo_config(SIMULATOR_URL, PUBLIC_URL, "sqlite:///x.db", now)
        denpasar = config.branch("kcu-denpasar")
        assert denpasar is not None
        assert not open_state(denpasar.opening_hours, denpasar.zone, now).is_open
