"""Every broadcaster kind keeps the contract: absent table → no targets; hostile text is safe."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

import broadcasters
from broadcasters import Deps, kinds, open_all
from broadcasters._registry import module
from status.clock import ManualClock
from status.config import load_config_text
from status.model import Event
from tests.conftest import TEST_CONFIG

pytestmark = pytest.mark.anyio
HOSTILE = "<b>&\"'\n[fake log line]"
AT = datetime(2026, 11, 23, 3, 30, tzinfo=UTC)


def hostile_event() -> Event:
    incident = {
        "id": "abc123def456",
        "name": HOSTILE,
        "status": "investigating",
        "impact": "major",
        "shortlink": "https://status.example.id/incidents/abc123def456",
        "incident_updates": [{"body": HOSTILE, "status": "investigating"}],
    }
    changes = [
        {
            "id": "kcu-medan",
            "name": HOSTILE,
            "old_status": "operational",
            "new_status": "major_outage",
        }
    ]
    return Event(
        7,
        "incident.created",
        AT,
        "abc123def456",
        ("kcu-medan",),
        {"incident": incident, "component_changes": changes},
    )


def deps(http: httpx.AsyncClient) -> Deps:
    return Deps(ManualClock(AT), http, load_config_text(TEST_CONFIG, "t.toml"), {})


def test_the_package_surface_is_pinned() -> None:
    assert broadcasters.__all__ == [
        "Broadcaster",
        "DeliveryError",
        "Deps",
        "FanOut",
        "Message",
        "Receipt",
        "kinds",
        "open_all",
        "open_fanouts",
        "tables",
    ]


@pytest.mark.parametrize("kind", kinds())
async def test_a_kind_without_its_table_opens_no_targets(kind: str) -> None:
    async with httpx.AsyncClient() as http, module(kind).open_targets({}, deps(http)) as targets:
        assert list(targets) == []


async def test_the_console_line_cannot_be_forged_by_staff_text() -> None:
    async with httpx.AsyncClient() as http, open_all({"console": {}}, deps(http)) as targets:
        (console,) = targets
        message = console.render(hostile_event())
    assert "\n" not in message.body
    assert message.body == (
        "[10.30 WIB] incident.created · <b>&\"' [fake log line] · investigating/major · "
        "<b>&\"' [fake log line]: Gangguan total · "
        "https://status.example.id/incidents/abc123def456"
    )


@pytest.mark.parametrize(
    ("filters", "wanted"),
    [
        (["*"], True),
        (["kcu-medan"], True),
        (["kcu-denpasar"], False),
        (["region:Sumatera Utara"], True),
        (["region:Bali"], False),
    ],
)
async def test_the_console_follows_only_what_it_is_configured_for(
    filters: list[str], wanted: bool
) -> None:
    async with (
        httpx.AsyncClient() as http,
        open_all({"console": {"components": filters}}, deps(http)) as targets,
    ):
        assert targets[0].wants(hostile_event()) is wanted
