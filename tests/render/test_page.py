"""Tests for status/render/page.py: what a person reads on the status page and incident permalinks."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from status.config import Config, load_config_text
from status.history import Day
from status.model import Component, Incident, IncidentUpdate, State
from status.render.page import next_midnight, render_page
from status.vocabulary import ComponentStatus, Impact, IncidentKind
from tests.conftest import TEST_CONFIG

# Monday 23 November 2026, 10:00 WIB: Medan (WIB) and Denpasar (WITA, 11:00) are open.
MONDAY = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
# Sunday 22 November 2026, 10:00 WIB: both are closed until Monday 07:30 local time.
SUNDAY = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
HOSTILE = '<script>alert(1)</script> & "quotes"'
CHECKS = """
[[check]]
id = "purchase-api"
component = "emeterai-purchase"
url = "https://upstream.example/api/purchase"

[[check]]
id = "purchase-api-2"
component = "emeterai-purchase"
url = "https://upstream.example/api/purchase2"

[[telegram.channel]]
chat = "@statusemeterai"

[[telegram.channel]]
chat = "-100123"
"""


def config(extra: str = CHECKS) -> Config:
    # The Telegram table belongs to a broadcaster; the page only reads it from the document.
    return load_config_text(TEST_CONFIG + extra, "test.toml", extra_tables=("telegram",))


def component(
    cid: str,
    name: str,
    group: str,
    kind: str,
    status: ComponentStatus = ComponentStatus.OPERATIONAL,
    position: int = 0,
) -> Component:
    return Component(cid, name, group, "", kind, position, status, status, MONDAY, MONDAY)


def components_of(cfg: Config, **statuses: ComponentStatus) -> tuple[Component, ...]:
    out = [
        component(
            c.id,
            c.name,
            c.group,
            "service",
            statuses.get(c.id.replace("-", "_"), ComponentStatus.OPERATIONAL),
            i,
        )
        for i, c in enumerate(cfg.components)
    ]
    out += [
        component(
            b.id,
            b.name,
            b.region,
            "branch",
            statuses.get(b.id.replace("-", "_"), ComponentStatus.OPERATIONAL),
            100 + i,
        )
        for i, b in enumerate(cfg.branches)
    ]
    return tuple(out)


def incident(
    iid: str,
    name: str,
    *,
    status: str = "identified",
    impact: Impact = Impact.MAJOR,
    updates: Sequence[tuple[str, str, datetime]] = (),
    components: Mapping[str, ComponentStatus] | None = None,
    kind: IncidentKind = IncidentKind.INCIDENT,
    at: datetime = MONDAY,
    resolved_at: datetime | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> Incident:
    ups = tuple(
        IncidentUpdate(f"{iid}-u{n}", iid, s, body, when, when)
        for n, (s, body, when) in enumerate(updates)
    )
    return Incident(
        iid,
        kind,
        name,
        status,
        impact,
        at,
        at,
        at,
        None,
        resolved_at,
        window[0] if window else None,
        window[1] if window else None,
        False,
        "staff",
        components or {},
        ups,
    )


def state(cfg: Config, **fields: Any) -> State:
    base = State(
        components=components_of(cfg),
        incidents=(),
        maintenances=(),
        last_event_id=1,
        loaded_at=MONDAY,
        last_change_at=MONDAY,
    )
    return replace(base, **fields)


def page(st: State, cfg: Config, now: datetime = MONDAY, path: str = "/") -> str:
    return render_page(st, cfg, now)[path][0].decode()


class Text(HTMLParser):
    """What a person reads: text outside <style>, with whitespace collapsed."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "style":
            self.skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


def read(html: str) -> Text:
    parser = Text()
    parser.feed(html)
    return parser


def test_all_well_says_so_in_bahasa_indonesia_by_default() -> None:
    cfg = config()
    html = page(state(cfg), cfg)
    assert html.startswith('<!doctype html>\n<html lang="id">')
    text = read(html).text
    assert "Semua layanan berjalan normal" in text
    assert "Pembelian e-Meterai" in text
    assert "Tidak ada gangguan dalam 90 hari terakhir." in text
    assert "Diperbarui Senin 23-11-2026 10.00 WIB" in text


def test_english_variant_and_the_language_switch() -> None:
    cfg = config()
    docs = render_page(state(cfg), cfg, MONDAY)
    english = docs["/?lang=en"][0].decode()
    assert '<html lang="en">' in english
    assert "All Systems Operational" in read(english).text
    assert docs["/"][0] == docs["/?lang=id"][0]
    switch = [a for tag, a in read(docs["/"][0].decode()).tags if tag == "a" and a.get("hreflang")]
    assert switch == [{"href": "/?lang=en", "hreflang": "en", "lang": "en"}]


def test_a_site_in_english_serves_english_at_the_bare_path() -> None:
    cfg = config()
    cfg = replace(cfg, site=replace(cfg.site, language="en"))
    docs = render_page(state(cfg), cfg, MONDAY)
    assert docs["/"][0] == docs["/?lang=en"][0]


@pytest.mark.parametrize(
    ("statuses", "open_incident", "expected"),
    [
        (
            {"emeterai_purchase": ComponentStatus.MAJOR_OUTAGE},
            False,
            ("Gangguan besar", "t-critical"),
        ),
        (
            {"emeterai_purchase": ComponentStatus.DEGRADED_PERFORMANCE},
            False,
            ("Gangguan ringan", "t-minor"),
        ),
        (
            {"emeterai_stamping": ComponentStatus.UNDER_MAINTENANCE},
            False,
            ("Sedang dalam pemeliharaan", "t-maintenance"),
        ),
        ({}, True, ("Gangguan sebagian", "t-major")),
    ],
)
def test_overall_status_banner(
    statuses: dict[str, ComponentStatus], open_incident: bool, expected: tuple[str, str]
) -> None:
    cfg = config()
    incidents = (incident("i1", "Loket tutup"),) if open_incident else ()
    html = page(state(cfg, components=components_of(cfg, **statuses), incidents=incidents), cfg)
    text, tone = expected
    assert f'<p class="banner {tone}" role="status">{text}</p>' in html


def test_upstream_components_show_status_and_90_day_bars() -> None:
    cfg = config()
    today = date(2026, 11, 23)
    daily = (
        Day("purchase-api", today, 500, 4),
        Day("purchase-api-2", today, 500, 0),  # two checks of one component add up
        Day("purchase-api", today - timedelta(days=1), 1000, 0),
        Day("purchase-api", today - timedelta(days=89), 1000, 100),
        Day("purchase-api", today - timedelta(days=90), 1000, 1000),  # beyond the 90 days
        Day("unknown-check", today, 10, 10),
    )
    comps = components_of(cfg, emeterai_purchase=ComponentStatus.PARTIAL_OUTAGE)
    html = page(state(cfg, components=comps, daily=daily), cfg)
    text = read(html).text
    assert "Pembelian e-Meterai Gangguan sebagian" in text
    bars = re.findall(r'<ol class="bars" aria-label="([^"]*)">(.*?)</ol>', html, re.S)
    assert len(bars) == 1, "only components with checks have bars"
    label, items = bars[0]
    assert label == "96,5% waktu normal dalam 90 hari"  # 104 failures in 3,000 checks, floored
    days = re.findall(r"<li(?: class=\"(u\d)\")?><span class=\"sr\">([^<]*)</span></li>", items)
    assert len(days) == 90
    assert days[0] == ("u4", "90,0% normal pada 26-08-2026")
    assert days[1] == ("", "Tanpa data pada 27-08-2026")
    assert days[-2] == ("u1", "100,0% normal pada 22-11-2026")
    assert days[-1] == ("u2", "99,6% normal pada 23-11-2026")
    english = page(state(cfg, components=comps, daily=daily), cfg, path="/?lang=en")
    assert "99.6% uptime on 2026-11-23" in english
    assert "Stamping" not in english  # names are the operator's, not translated


def test_a_day_with_one_failure_never_reads_100_percent() -> None:
    cfg = config()
    daily = (Day("purchase-api", date(2026, 11, 23), 100_000, 1),)
    assert "99,9% normal pada 23-11-2026" in page(state(cfg, daily=daily), cfg)


def test_branch_board_is_grouped_by_region_with_queue_wait_and_stall() -> None:
    cfg = config()
    queues = {
        "kcu-medan": {
            "serving": 37,
            "issued": 120,
            "counters_open": 2,
            "length": 83,
            "served_per_hour": 30,
            "estimated_wait_s": 9960,
            "stalled": True,
            "last_move_at": datetime(2026, 11, 23, 2, 35, tzinfo=UTC),
            "read_at": datetime(2026, 11, 23, 2, 59, tzinfo=UTC),
            "source": "poll",
        }
    }
    html = page(state(cfg, queues=queues), cfg)
    text = read(html).text
    assert text.index("Sumatera Utara") < text.index("KCU Medan") < text.index("Bali")
    assert text.index("Bali") < text.index("KCU Denpasar") < text.index("Papua")
    assert "KCU Medan Normal Buka sampai 16.00 WIB" in text
    assert "Antrean 83 orang · perkiraan 166 menit · data antrean 09.59 WIB" in text
    assert "Antrean tidak bergerak sejak 09.35 WIB" in text
    assert "KCU Denpasar Normal Buka sampai 16.00 WITA" in text
    assert "KCU Jayapura Normal Buka 24 jam" in text
    english = read(page(state(cfg, queues=queues), cfg, path="/?lang=en")).text
    assert "83 waiting · about 166 min · queue read 09:59 WIB" in english
    assert "Queue not moving since 09:35 WIB" in english


def test_a_closed_branch_is_closed_not_down_and_says_until_when() -> None:
    cfg = config()
    comps = components_of(cfg, kcu_medan=ComponentStatus.MAJOR_OUTAGE)
    queues = {"kcu-medan": {"length": 5, "estimated_wait_s": 60, "stalled": True,
                            "serving": 1, "issued": 6, "counters_open": 0, "served_per_hour": 0,
                            "last_move_at": SUNDAY, "read_at": SUNDAY, "source": "poll"}}  # fmt: skip
    st = state(cfg, components=comps, queues=queues)
    text = read(page(st, cfg, SUNDAY)).text
    assert "KCU Medan Tutup Tutup, buka lagi Senin 23-11-2026 07.30 WIB" in text
    assert "KCU Denpasar Tutup Tutup, buka lagi Senin 23-11-2026 07.30 WITA" in text
    assert "Gangguan total" not in text
    assert "Antrean" not in text.replace("Antrean tidak", "")  # no queue figures while closed
    assert "tidak bergerak" not in text
    english = read(page(st, cfg, SUNDAY, "/?lang=en")).text
    assert "KCU Medan Closed Closed, opens Monday 2026-11-23 07:30 WIB" in english


def test_active_incidents_show_their_updates_newest_first_in_local_time() -> None:
    cfg = config()
    open_one = incident(
        "abc123",
        "Loket e-Meterai KCU Medan tutup",
        status="monitoring",
        components={"kcu-medan": ComponentStatus.PARTIAL_OUTAGE},
        updates=[
            (
                "monitoring",
                "Loket buka lagi.\nNomor antrean tetap berlaku.",
                MONDAY + timedelta(hours=1),
            ),
            ("identified", "Jaringan pusat terganggu.", MONDAY),
        ],
    )
    html = page(state(cfg, incidents=(open_one,)), cfg)
    text = read(html).text
    assert "Gangguan berlangsung Loket e-Meterai KCU Medan tutup" in text
    assert "Dipantau · Dampak: sebagian · Terdampak: KCU Medan" in text
    newest = text.index("Dipantau Senin 23-11-2026 11.00 WIB Loket buka lagi.")
    older = text.index("Teridentifikasi Senin 23-11-2026 10.00 WIB Jaringan pusat terganggu.")
    assert newest < older
    assert '<a href="/incidents/abc123?lang=id">' in html
    assert "Loket buka lagi.\nNomor antrean" in html  # kept as lines (CSS pre-line)


def test_maintenance_and_past_incidents() -> None:
    cfg = config()
    maintenance = incident(
        "m1",
        "Pemeliharaan server",
        status="scheduled",
        impact=Impact.MAINTENANCE,
        kind=IncidentKind.MAINTENANCE,
        components={"emeterai-stamping": ComponentStatus.UNDER_MAINTENANCE},
        updates=[("scheduled", "Pembubuhan tidak tersedia dua jam.", MONDAY)],
        window=(MONDAY + timedelta(days=1), MONDAY + timedelta(days=1, hours=2)),
    )
    past = incident(
        "old1",
        "Pembelian lambat",
        status="resolved",
        impact=Impact.MINOR,
        at=MONDAY - timedelta(days=3),
        resolved_at=MONDAY - timedelta(days=3) + timedelta(hours=2),
        updates=[("resolved", "Sudah normal.", MONDAY - timedelta(days=3))],
    )
    html = page(state(cfg, incidents=(past,), maintenances=(maintenance,)), cfg)
    text = read(html).text
    assert (
        "Pemeliharaan terjadwal Pemeliharaan server Terjadwal · Terdampak: Pembubuhan e-Meterai"
        in text
    )
    assert "Selasa 24-11-2026 10.00 WIB s.d. Selasa 24-11-2026 12.00 WIB" in text
    assert "Pembubuhan tidak tersedia dua jam." in text
    assert "Gangguan berlangsung" not in text
    assert "Gangguan 90 hari terakhir Pembelian lambat Selesai Jumat 20-11-2026 12.00 WIB" in text
    docs = render_page(state(cfg, incidents=(past,), maintenances=(maintenance,)), cfg, MONDAY)
    assert {"/incidents/m1", "/incidents/old1?lang=en"} <= set(docs)


def test_incident_permalink_page() -> None:
    cfg = config()
    one = incident(
        "abc123",
        "Loket tutup",
        status="resolved",
        resolved_at=MONDAY + timedelta(hours=2),
        components={"kcu-denpasar": ComponentStatus.MAJOR_OUTAGE},
        updates=[
            ("resolved", "Sudah buka.", MONDAY + timedelta(hours=2)),
            ("identified", "Tutup.", MONDAY),
        ],
    )
    docs = render_page(state(cfg, incidents=(one,)), cfg, MONDAY)
    html = docs["/incidents/abc123"][0].decode()
    assert "<title>Loket tutup · Status e-Meterai</title>" in html
    text = read(html).text
    assert "Loket tutup Selesai · Dampak: sebagian Terdampak: KCU Denpasar" in text
    assert "Mulai Senin 23-11-2026 10.00 WIB · Selesai Senin 23-11-2026 12.00 WIB" in text
    assert text.index("Sudah buka.") < text.index("Tutup.")
    assert '<a href="/incidents/abc123?lang=en" hreflang="en"' in html
    assert docs["/incidents/abc123"][1] == "text/html; charset=utf-8"
    english = read(docs["/incidents/abc123?lang=en"][0].decode()).text
    assert "Resolved · Impact: major" in english


def test_user_text_is_escaped_everywhere() -> None:
    cfg = config(CHECKS.replace('chat = "@statusemeterai"', 'chat = "@status<b>"'))
    hostile = incident(
        "x1",
        HOSTILE,
        updates=[("identified", HOSTILE, MONDAY)],
        components={"kcu-medan": ComponentStatus.MAJOR_OUTAGE},
    )
    comps = tuple(
        replace(c, name=HOSTILE) if c.id == "kcu-medan" else c for c in components_of(cfg)
    )
    docs = render_page(state(cfg, components=comps, incidents=(hostile,)), cfg, MONDAY)
    for path in ("/", "/incidents/x1", "/?lang=en"):
        html = docs[path][0].decode()
        assert "<script" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quotes&#34;" in html
        assert HOSTILE in read(html).text
    assert "<b>" not in docs["/"][0].decode()


def test_follow_links_name_the_channels_the_bot_and_the_feeds() -> None:
    cfg = config(CHECKS + '\n[telegram.bot]\nenabled = true\nusername = "SiaranBot"\n')
    html = page(state(cfg), cfg)
    links = {a["href"]: a for tag, a in read(html).tags if tag == "a"}
    assert "https://t.me/statusemeterai" in links
    assert "https://t.me/SiaranBot" in links
    assert not any("-100123" in href for href in links if href)  # a private chat id has no link
    for feed in ("/history.atom?lang=id", "/history.rss?lang=id", "/updates.atom?lang=id"):
        assert feed in links
    text = read(html).text
    assert "Kanal Telegram @statusemeterai" in text
    assert "Bot Telegram @SiaranBot" in text
    english = read(page(state(cfg), cfg, path="/?lang=en")).text
    assert "Telegram channel @statusemeterai" in english


def test_nothing_is_loaded_from_elsewhere() -> None:
    cfg = config()
    html = page(state(cfg, incidents=(incident("i", "x"),)), cfg)
    tags = read(html).tags
    assert not [t for t, _ in tags if t in ("script", "img", "iframe", "object", "embed")]
    assert not [
        a for t, a in tags if t == "link" and a.get("rel") in ("stylesheet", "preload", "icon")
    ]
    assert not [a for t, a in tags if "src" in a]
    # Only links a person follows may leave the site; nothing the page itself loads.
    for tag, attrs in tags:
        href = attrs.get("href") or ""
        if tag != "a":
            assert not href.startswith(("http:", "https:", "//")), (tag, attrs)
    style = html[html.index("<style>") : html.index("</style>")]
    assert "url(" not in style
    assert "@import" not in style
    assert "@font-face" not in style


def branches_config(count: int) -> Config:
    regions = ["Sumatera Utara", "Bali", "Papua", "DKI Jakarta", "Jawa Barat", "Sulawesi Selatan"]
    zones = ["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"]
    lines = [TEST_CONFIG.split("[[branch]]")[0]]
    lines.append(
        '[[component]]\nid = "emeterai-download"\nname = "Pengiriman tautan unduhan"\ngroup = "Layanan e-Meterai"\n'
    )
    for cid in ("emeterai-purchase", "emeterai-stamping", "emeterai-download"):
        lines.append(
            f'[[check]]\nid = "{cid}-api"\ncomponent = "{cid}"\nurl = "https://u.example/{cid}"\n'
        )
    for n in range(count):
        lines.append(
            f'[[branch]]\nid = "kc-{n:02d}"\nname = "Kantor Cabang Nomor {n:02d} Kota Panjang"\n'
            f'region = "{regions[n % len(regions)]}"\ntimezone = "{zones[n % 3]}"\n'
            f'hours = "Mon-Fri 07:30-16:00; Sat 08:00-12:00"\n'
        )
    return load_config_text("\n".join(lines), "big.toml")


def busy_state(cfg: Config) -> State:
    today = date(2026, 11, 23)
    daily = tuple(
        Day(c.id, today - timedelta(days=n), 2880, n % 5) for c in cfg.checks for n in range(90)
    )
    queues = {
        b.id: {"serving": 10, "issued": 50, "counters_open": 2, "length": 40, "served_per_hour": 20,
               "estimated_wait_s": 7200, "stalled": n % 4 == 0, "source": "poll",
               "last_move_at": MONDAY - timedelta(minutes=30), "read_at": MONDAY}
        for n, b in enumerate(cfg.branches)
    }  # fmt: skip
    incidents = tuple(
        incident(
            f"inc{n}",
            f"Gangguan pembelian e-Meterai nomor {n}",
            status="identified" if n < 3 else "resolved",
            resolved_at=None if n < 3 else MONDAY - timedelta(days=n),
            updates=[("identified", "Server pusat tidak menjawab. " * 5, MONDAY)] * 3,
            components={"emeterai-purchase": ComponentStatus.MAJOR_OUTAGE},
        )
        for n in range(40)
    )
    comps = components_of(cfg, kc_00=ComponentStatus.MAJOR_OUTAGE)
    return state(cfg, components=comps, daily=daily, queues=queues, incidents=incidents)


def test_the_page_stays_under_100_kb_with_60_branches_and_90_day_bars() -> None:
    cfg = branches_config(60)
    st = busy_state(cfg)
    docs = render_page(st, cfg, MONDAY)
    for path in ("/?lang=id", "/?lang=en"):
        size = len(docs[path][0])
        assert size < 100_000, f"{path} is {size} bytes"
    assert read(docs["/"][0].decode()).text.count("Kantor Cabang Nomor") == 60


def test_rendering_60_branches_is_fast_enough_to_run_on_every_change() -> None:
    cfg = branches_config(60)
    st = busy_state(cfg)
    render_page(st, cfg, MONDAY)  # templates compiled, holidays loaded
    started = time.perf_counter()
    render_page(st, cfg, MONDAY)
    took = time.perf_counter() - started
    # Both languages, the page and 40 permalinks each; generous for a shared 2-core machine.
    assert took < 0.25, f"{took * 1000:.0f} ms"


def test_the_bars_move_at_the_sites_midnight() -> None:
    cfg = config()
    assert next_midnight(cfg, state(cfg), MONDAY) == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def test_a_long_running_incident_shows_its_newest_updates_and_links_the_rest() -> None:
    cfg = config()
    updates = [
        ("identified", f"Kabar nomor {n}.", MONDAY + timedelta(minutes=n)) for n in range(7, 0, -1)
    ]
    long_one = incident("long1", "Gangguan panjang", updates=updates)
    docs = render_page(state(cfg, incidents=(long_one,)), cfg, MONDAY)
    text = read(docs["/"][0].decode()).text
    assert [n for n in range(1, 8) if f"Kabar nomor {n}." in text] == [3, 4, 5, 6, 7]
    assert "Selengkapnya" in text
    permalink = read(docs["/incidents/long1"][0].decode()).text
    assert all(f"Kabar nomor {n}." in permalink for n in range(1, 8))


def _luminance(hex_colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(foreground: str, background: str) -> float:
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_every_text_colour_meets_wcag_aa_contrast() -> None:
    cfg = config()
    html = page(state(cfg), cfg)
    style = html[html.index("<style>") : html.index("</style>")]
    page_background = re.search(r"body\{[^}]*background:(#[0-9a-f]{6})", style)
    assert page_background is not None
    text_colours = re.findall(r"(?:^|\}|\n)([.a-z_\-, ]+)\{color:(#[0-9a-f]{6})", style)
    banners = re.findall(r"\.t-[a-z]+\{background:(#[0-9a-f]{6})\}", style)
    assert len(text_colours) >= 8
    assert len(banners) == 5
    for selector, colour in text_colours:
        for background in ("#ffffff", page_background.group(1)):  # cards are white
            assert contrast(colour, background) >= 4.5, (selector, colour, background)
    for background in banners:  # white bold text on the overall-status banner
        assert contrast("#ffffff", background) >= 4.5, background


def test_a_bot_that_is_not_running_is_not_linked() -> None:
    cfg = config(CHECKS + '\n[telegram.bot]\nenabled = false\nusername = "SiaranBot"\n')
    links = {a["href"] for tag, a in read(page(state(cfg), cfg)).tags if tag == "a"}
    assert "https://t.me/statusemeterai" in links
    assert "https://t.me/SiaranBot" not in links
