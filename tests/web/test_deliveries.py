"""Ops see what was sent where and what failed, and can put failures back in line."""

from __future__ import annotations

import httpx
import pytest

from broadcasters import DeliveryError
from broadcasters._dispatch import Dispatcher
from status.services import Services
from tests.broadcasters.test_dispatch import Recorder, news, rng, run_once

pytestmark = pytest.mark.anyio


async def a_failed_delivery(services: Services) -> Recorder:
    gone = Recorder("telegram:@statusemeterai")
    gone.failures = [
        DeliveryError("Forbidden: bot is not a member of the channel chat", permanent=True)
    ]
    d = Dispatcher(services.engine, services.clock, [gone], instance_id="d", rng=rng())
    await d.start()
    await news(services, "Loket <b>tutup</b>")
    await run_once(d)
    return gone


async def test_admins_see_failed_deliveries_with_the_reason(
    admin: httpx.AsyncClient, services: Services
) -> None:
    await a_failed_delivery(services)
    answer = await admin.get("/api/v1/deliveries", params={"status": "failed"})
    assert answer.status_code == 200
    (row,) = answer.json()["deliveries"]
    assert row["target"] == "telegram:@statusemeterai"
    assert row["last_error"] == "Forbidden: bot is not a member of the channel chat"
    assert row["target_disabled"] == "Forbidden: bot is not a member of the channel chat"
    assert row["attempts"] == 1


async def test_a_retry_puts_it_back_in_line_and_it_is_sent(
    admin: httpx.AsyncClient, services: Services
) -> None:
    channel = await a_failed_delivery(services)
    answer = await admin.post(
        "/api/v1/deliveries/retry", json={"target": "telegram:@statusemeterai"}
    )
    assert answer.json() == {"retried": 1}
    d = Dispatcher(services.engine, services.clock, [channel], instance_id="d2", rng=rng())
    await run_once(d)
    assert [b for b, _ in channel.got] == ["incident.created: Loket <b>tutup</b>"]
    sent = (await admin.get("/api/v1/deliveries", params={"status": "sent"})).json()
    assert sent["deliveries"][0]["target_disabled"] is None


async def test_branch_staff_cannot_read_or_retry_deliveries(medan_staff: httpx.AsyncClient) -> None:
    assert (await medan_staff.get("/api/v1/deliveries")).status_code == 403
    retried = await medan_staff.post("/api/v1/deliveries/retry", json={"ids": [1]})
    assert retried.status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "lost"}, "status"), ({"limit": "0"}, "limit"), ({"before": "x"}, "before")],
)
async def test_bad_filters_are_400s(
    admin: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    answer = await admin.get("/api/v1/deliveries", params=params)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("body", "field"), [({}, "ids"), ({"ids": ["1"]}, "ids"), ({"ids": [1], "x": 2}, "x")]
)
async def test_a_bad_retry_names_the_field(
    admin: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    answer = await admin.post("/api/v1/deliveries/retry", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == field
