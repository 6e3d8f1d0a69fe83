"""Tests for status/render/feeds.py: Atom and RSS feeds as a journalist's reader sees them.

Feeds are read back the way readers read them (feedparser, which flags any malformed XML as
"bozo") and, for exact structure and text, with the standard library's XML parser.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import feedparser  # type: ignore[import-untyped]  # feedparser ships no type hints
import pytest

from status.config import BranchConfig, ComponentConfig, Config, Site
from status.model import AffectedComponent, Component, Incident, IncidentUpdate, State
from status.render.feeds import ATOM, HISTORY_LIMIT, RSS, UPDATES_LIMIT, region_slug, render_feeds
from status.vocabulary import ComponentStatus, Impact, IncidentKind

A = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
HOSTILE = "<b>&\"'"
BASE = "https://status.example.id"
# Monday 23 November 2026: 10.00 WIB, 11.00 WITA, 12.00 WIT.
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
OK = ComponentStatus.OPERATIONAL

SITE = Site(
    name=f"Status e-Meterai {HOSTILE}",
    public_url=f"{BASE}/",
    language="id",
    timezone="Asia/Jakarta",
)
CONFIG = Config(
    site=SITE,
    components=(ComponentConfig("emeterai-purchase", "Pembelian e-Meterai", "Layanan e-Meterai"),),
    branches=(
        BranchConfig("kcu-medan", "KCU Medan", "Sumatera Utara", "Asia/Jakarta"),
        BranchConfig("kcu-denpasar", "KCU Denpasar", "Bali", "Asia/Makassar"),
        BranchConfig("kcu-jayapura", "KCU Jayapura", "Papua", "Asia/Jayapura"),
        BranchConfig("kc-abepura", "KC Abepura", "Papua", "Asia/Jayapura"),
    ),
)
COMPONENTS = (
    Component("emeterai-purchase", "Pembelian e-Meterai", "Layanan e-Meterai", "", "service", 0, OK, OK, T0, T0),
    Component("kcu-medan", f"KCU Medan {HOSTILE}", "Sumatera Utara", "", "branch", 1, OK, OK, T0, T0),
    Component("kcu-denpasar", "KCU Denpasar", "Bali", "", "branch", 2, OK, OK, T0, T0),
    Component("kcu-jayapura", "KCU Jayapura", "Papua", "", "branch", 3, OK, OK, T0, T0),
    Component("kc-abepura", "KC Abepura", "Papua", "", "branch", 4, OK, OK, T0, T0),
)  # fmt: skip


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def incident(
    incident_id: str,
    name: str,
    updates: list[tuple[str, str, int]],
    components: tuple[str, ...] = ("kcu-denpasar",),
    *,
    impact: Impact = Impact.MAJOR,
    posted: int = 0,
    maintenance: tuple[datetime, datetime] | None = None,
) -> Incident:
    """`updates` oldest first as (status, body, minutes after T0); stored newest first."""
    made = tuple(
        IncidentUpdate(
            f"{incident_id}-u{n}",
            incident_id,
            status,
            body,
            at(minutes),
            at(minutes),
            tuple(
                AffectedComponent(c, c.upper(), OK, ComponentStatus.MAJOR_OUTAGE)
                for c in components
            ),
        )
        for n, (status, body, minutes) in enumerate(updates)
    )[::-1]
    status = made[0].status if made else "investigating"
    closed = status in ("resolved", "postmortem", "completed")
    return Incident(
        id=incident_id,
        kind=IncidentKind.MAINTENANCE if maintenance else IncidentKind.INCIDENT,
        name=name,
        status=status,
        impact=Impact.MAINTENANCE if maintenance else impact,
        created_at=at(posted),
        updated_at=made[0].created_at if made else at(posted),
        started_at=at(posted),
        monitoring_at=None,
        resolved_at=made[0].created_at if closed else None,
        scheduled_for=maintenance[0] if maintenance else None,
        scheduled_until=maintenance[1] if maintenance else None,
        auto_transition=False,
        origin="staff",
        components=dict.fromkeys(components, ComponentStatus.MAJOR_OUTAGE),
        updates=made,
    )


def state(*items: Incident) -> State:
    newest = max((i.updated_at for i in items), default=T0)
    return State(
        components=COMPONENTS,
        incidents=tuple(i for i in items if i.kind is IncidentKind.INCIDENT),
        maintenances=tuple(i for i in items if i.kind is IncidentKind.MAINTENANCE),
        last_event_id=len(items),
        loaded_at=newest,
        last_change_at=newest,
    )


def render(s: State, config: Config = CONFIG) -> Mapping[str, tuple[bytes, str]]:
    return render_feeds(s, config, s.loaded_at)


def xml(body: bytes) -> ET.Element:
    return ET.fromstring(body)  # noqa: S314  # our own renderer's output, not untrusted input


def entries(body: bytes) -> list[ET.Element]:
    return xml(body).findall(f"{A}entry")


def text(element: ET.Element, tag: str) -> str:
    found = element.find(f"{A}{tag}")
    assert found is not None, tag
    return found.text or ""


def attribute(element: ET.Element, tag: str, name: str) -> str:
    found = element.find(f"{A}{tag}")
    assert found is not None, tag
    return found.get(name, "")


def read(body: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


OUTAGE = incident(
    "inc1",
    "Loket e-Meterai KCU Denpasar tutup",
    [("investigating", "Jaringan putus.\nNomor antrean tetap berlaku.", 0)],
)
RESOLVED = incident(
    "inc1",
    "Loket e-Meterai KCU Denpasar tutup",
    [
        ("investigating", "Jaringan putus.\nNomor antrean tetap berlaku.", 0),
        ("resolved", "Loket buka kembali.", 60),
    ],
)


def test_history_has_an_entry_per_incident_notice_and_maintenance_newest_first() -> None:
    items = (
        incident("old", "Gangguan lama", [("resolved", "Selesai.", 0)], posted=0),
        incident(
            "notice",
            "Meterai tempel juga diterima",
            [("identified", "Kementerian menerima meterai tempel.", 30)],
            (),
            impact=Impact.NONE,
            posted=30,
        ),
        incident(
            "maint",
            "Pemeliharaan server",
            [("scheduled", "Dua jam.", 60)],
            ("emeterai-purchase",),
            posted=60,
            maintenance=(at(24 * 60), at(26 * 60)),
        ),
    )
    feed = xml(render(state(*items))["/history.atom"][0])
    found = feed.findall(f"{A}entry")
    assert [text(e, "id") for e in found] == [
        f"{BASE}/incidents/maint",
        f"{BASE}/incidents/notice",
        f"{BASE}/incidents/old",
    ]
    assert [text(e, "title") for e in found] == [
        "Pemeliharaan server",
        "Meterai tempel juga diterima",
        "Gangguan lama",
    ]
    assert [attribute(e, "category", "term") for e in found] == [
        "maintenance",
        "notice",
        "incident",
    ]
    assert [attribute(e, "link", "href") for e in found] == [
        f"{BASE}/incidents/maint",
        f"{BASE}/incidents/notice",
        f"{BASE}/incidents/old",
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/history.atom",
            "<p><small>Senin 23-11-2026 12.00 WITA</small><br><strong>Selesai</strong>"
            " - Loket buka kembali.</p>"
            "<p><small>Senin 23-11-2026 11.00 WITA</small><br><strong>Investigasi</strong>"
            " - Jaringan putus.<br>Nomor antrean tetap berlaku.</p>"
            "<p>Terdampak: KCU Denpasar</p>",
        ),
        (
            "/history.atom?lang=en",
            "<p><small>Monday 2026-11-23 12:00 WITA</small><br><strong>Resolved</strong>"
            " - Loket buka kembali.</p>"
            "<p><small>Monday 2026-11-23 11:00 WITA</small><br><strong>Investigating</strong>"
            " - Jaringan putus.<br>Nomor antrean tetap berlaku.</p>"
            "<p>Affected: KCU Denpasar</p>",
        ),
    ],
)
def test_entry_carries_every_update_in_the_branchs_local_time(path: str, expected: str) -> None:
    (entry,) = entries(render(state(RESOLVED))[path][0])
    content = entry.find(f"{A}content")
    assert content is not None
    assert content.get("type") == "html"
    assert content.text == expected
    # Dates are UTC; local time lives in the text.
    assert text(entry, "published") == "2026-11-23T03:00:00+00:00"
    assert text(entry, "updated") == "2026-11-23T04:00:00+00:00"


def test_rss_item_carries_the_same_text_and_a_permalink_guid() -> None:
    rss = xml(render(state(RESOLVED))["/history.rss?lang=en"][0])
    (item,) = rss.findall("channel/item")
    assert item.findtext("title") == "Loket e-Meterai KCU Denpasar tutup"
    assert item.findtext("link") == f"{BASE}/incidents/inc1?lang=en"
    guid = item.find("guid")
    assert guid is not None
    assert (guid.text, guid.get("isPermaLink")) == (f"{BASE}/incidents/inc1", "true")
    assert item.findtext("pubDate") == "Mon, 23 Nov 2026 03:00:00 +0000"
    assert (item.findtext("description") or "").startswith(
        "<p><small>Monday 2026-11-23 12:00 WITA</small><br><strong>Resolved</strong>"
    )


def test_entry_id_survives_an_update_and_updated_moves() -> None:
    before = render(state(OUTAGE))
    after = render(state(RESOLVED))
    for path in ("/history.atom", "/components/kcu-denpasar/history.atom", "/regions/bali/history.atom"):  # fmt: skip
        (old,) = entries(before[path][0])
        (new,) = entries(after[path][0])
        assert text(old, "id") == text(new, "id") == f"{BASE}/incidents/inc1"
        assert text(old, "updated") == "2026-11-23T03:00:00+00:00"
        assert text(new, "updated") == "2026-11-23T04:00:00+00:00"
        assert text(xml(after[path][0]), "updated") == "2026-11-23T04:00:00+00:00"
    rss_before = read(before["/history.rss"][0]).entries[0]
    rss_after = read(after["/history.rss"][0]).entries[0]
    assert rss_before.id == rss_after.id == f"{BASE}/incidents/inc1"


def test_updates_feed_has_one_entry_per_update_that_is_never_rewritten() -> None:
    before = entries(render(state(OUTAGE))["/updates.atom"][0])
    after = entries(render(state(RESOLVED))["/updates.atom"][0])
    assert [text(e, "id") for e in after] == [
        f"{BASE}/incidents/inc1#update-inc1-u1",
        f"{BASE}/incidents/inc1#update-inc1-u0",
    ]
    assert [text(e, "title") for e in after] == [
        "Loket e-Meterai KCU Denpasar tutup — Selesai",
        "Loket e-Meterai KCU Denpasar tutup — Investigasi",
    ]
    assert text(after[0], "content") == (
        "<p><small>Senin 23-11-2026 12.00 WITA</small><br><strong>Selesai</strong>"
        " - Loket buka kembali.</p><p>Terdampak: KCU-DENPASAR (Gangguan total)</p>"
    )
    assert [text(e, "updated") for e in after] == [
        "2026-11-23T04:00:00+00:00",
        "2026-11-23T03:00:00+00:00",
    ]
    # The first update's entry is the same, byte for byte, after the second arrives.
    assert ET.tostring(before[0]) == ET.tostring(after[1])


def test_feeds_escape_names_and_bodies() -> None:
    name = "<script>alert(1)</script> & Co"
    body = f"Antrean {HOSTILE} <img src=x onerror=alert(1)>"
    hostile = incident("x1", name, [("investigating", body, 0)], ("kcu-medan",))
    files = render(state(hostile))
    raw = files["/history.atom"][0]
    assert b"<script>" not in raw
    assert b"<img" not in raw
    (entry,) = entries(raw)
    assert text(entry, "title") == name
    assert text(entry, "content") == (
        "<p><small>Senin 23-11-2026 10.00 WIB</small><br><strong>Investigasi</strong> - "
        "Antrean &lt;b&gt;&amp;&quot;&#x27; &lt;img src=x onerror=alert(1)&gt;</p>"
        "<p>Terdampak: KCU Medan &lt;b&gt;&amp;&quot;&#x27;</p>"
    )
    assert text(xml(raw), "title") == f"Status e-Meterai {HOSTILE} — Riwayat insiden"
    for path, (body_bytes, _) in files.items():
        parsed = read(body_bytes)
        for item in parsed.entries:
            status = "Investigating" if path.endswith("lang=en") else "Investigasi"
            assert item.title == (f"{name} — {status}" if "/updates." in path else name)
            assert "<script" not in item.summary
            assert "<img" not in item.summary


def test_a_control_character_in_a_notice_does_not_break_the_feeds() -> None:
    broken = incident("c1", "Loket\x0btutup", [("identified", "Antrean\x1bberhenti", 0)])
    files = render(state(broken))
    for body, _ in files.values():
        read(body)
    (entry,) = entries(files["/history.atom"][0])
    assert text(entry, "title") == "Loket\ufffdtutup"
    assert "Antrean\ufffdberhenti" in text(entry, "content")


def test_component_feed_has_its_own_incidents_and_notices_for_everyone() -> None:
    items = (
        incident("medan", "Antrean Medan macet", [("identified", "x", 0)], ("kcu-medan",)),
        incident("bali", "Loket Denpasar tutup", [("identified", "x", 10)], posted=10),
        incident("all", "Meterai tempel diterima", [("identified", "x", 20)], (), posted=20),
    )
    files = render(state(*items))

    def ids(path: str) -> list[str]:
        return [text(e, "id").rsplit("/", 1)[1] for e in entries(files[path][0])]

    assert ids("/components/kcu-medan/history.atom") == ["all", "medan"]
    assert ids("/components/kcu-denpasar/history.atom") == ["all", "bali"]
    assert ids("/components/emeterai-purchase/history.atom") == ["all"]
    assert ids("/regions/sumatera-utara/history.atom") == ["all", "medan"]
    assert ids("/history.atom") == ["all", "bali", "medan"]
    title = text(xml(files["/components/kcu-medan/history.atom?lang=en"][0]), "title")
    assert title == f"Status e-Meterai {HOSTILE} — KCU Medan {HOSTILE}: history"


def test_region_feed_gathers_its_branches_and_speaks_their_zone() -> None:
    # Named first: Medan (WIB). In Papua's feed the times are still Papua's (WIT).
    both = incident(
        "both", "Jaringan terputus", [("identified", "x", 0)], ("kcu-medan", "kc-abepura")
    )
    papua = incident(
        "papua", "Antrean Jayapura", [("identified", "y", 5)], ("kcu-jayapura",), posted=5
    )
    files = render(state(both, papua))
    found = entries(files["/regions/papua/history.atom"][0])
    assert [text(e, "id").rsplit("/", 1)[1] for e in found] == ["papua", "both"]
    assert "12.00 WIT</small>" in text(found[1], "content")
    assert "10.00 WIB</small>" in text(entries(files["/history.atom"][0])[1], "content")
    assert text(xml(files["/regions/papua/history.atom"][0]), "title") == (
        f"Status e-Meterai {HOSTILE} — Wilayah Papua: riwayat"
    )
    assert not [p for p in files if p.startswith("/regions/layanan")]  # services have no region


@pytest.mark.parametrize(
    ("region", "slug"),
    [
        ("Sumatera Utara", "sumatera-utara"),
        ("DKI Jakarta", "dki-jakarta"),
        ("Nusa Tenggara Barat (NTB)", "nusa-tenggara-barat-ntb"),
        ("Bali", "bali"),
    ],
)
def test_region_slug_is_the_name_in_lowercase_words(region: str, slug: str) -> None:
    assert region_slug(region) == slug


def test_maintenance_entry_shows_its_window_in_local_time() -> None:
    window = (datetime(2026, 11, 24, 1, 0, tzinfo=UTC), datetime(2026, 11, 24, 3, 0, tzinfo=UTC))
    maint = incident(
        "m1",
        "Pemeliharaan server e-Meterai",
        [("scheduled", "Pembubuhan tidak tersedia.", 0), ("in_progress", "Dimulai.", 60)],
        maintenance=window,
    )
    files = render(state(maint))
    (entry,) = entries(files["/history.atom"][0])
    assert text(entry, "content") == (
        "<p>Jadwal pemeliharaan: Selasa 24-11-2026 09.00 WITA s.d. Selasa 24-11-2026 11.00 WITA</p>"
        "<p><small>Senin 23-11-2026 12.00 WITA</small><br><strong>Berlangsung</strong>"
        " - Dimulai.</p>"
        "<p><small>Senin 23-11-2026 11.00 WITA</small><br><strong>Terjadwal</strong>"
        " - Pembubuhan tidak tersedia.</p>"
        "<p>Terdampak: KCU Denpasar</p>"
    )
    (english,) = entries(files["/history.atom?lang=en"][0])
    assert text(english, "content").startswith(
        "<p>Scheduled maintenance: Tuesday 2026-11-24 09:00 WITA to Tuesday 2026-11-24 11:00 WITA</p>"
    )
    updates = entries(files["/updates.atom?lang=en"][0])
    assert [text(e, "title") for e in updates] == [
        "Pemeliharaan server e-Meterai — In progress",
        "Pemeliharaan server e-Meterai — Scheduled",
    ]


SAMPLE = state(
    RESOLVED,
    incident("n1", "Pemberitahuan", [("identified", "z", 5)], (), impact=Impact.NONE, posted=5),
)


@pytest.mark.parametrize("sample", [SAMPLE, state()], ids=["with-entries", "empty"])
def test_atom_feeds_meet_rfc_4287(sample: State) -> None:
    atom_paths = [p for p, (_, ct) in render(sample).items() if ct == ATOM]
    assert len(atom_paths) == 3 * (2 + len(COMPONENTS) + 3)  # history, updates; 3 regions
    for path, (body, content_type) in render(sample).items():
        if content_type != ATOM:
            continue
        feed = xml(body)
        assert feed.tag == f"{A}feed"
        assert feed.get(XML_LANG) == ("en" if path.endswith("?lang=en") else "id")
        for tag in ("id", "title", "updated", "author"):
            assert len(feed.findall(f"{A}{tag}")) == 1, (path, tag)
        assert feed.findtext(f"{A}author/{A}name") == f"Status e-Meterai {HOSTILE}"
        links = {link.get("rel"): link for link in feed.findall(f"{A}link")}
        assert links["self"].get("href") == BASE + path.replace("?lang=id", "")
        assert links["self"].get("type") == "application/atom+xml"
        assert links["alternate"].get("type") == "text/html"
        assert text(feed, "id") == BASE + path.replace("?lang=id", "")
        rfc3339(text(feed, "updated"))
        seen = set()
        for entry in feed.findall(f"{A}entry"):
            for tag in ("id", "title", "updated", "published", "content"):
                assert len(entry.findall(f"{A}{tag}")) == 1, (path, tag)
            alternates = [
                link
                for link in entry.findall(f"{A}link")
                if link.get("rel", "alternate") == "alternate"
            ]
            assert len(alternates) == 1
            assert alternates[0].get("href", "").startswith(f"{BASE}/incidents/")
            rfc3339(text(entry, "updated"))
            rfc3339(text(entry, "published"))
            seen.add(text(entry, "id"))
        assert len(seen) == len(feed.findall(f"{A}entry")), "entry ids repeat"
        read(body)


def rfc3339(value: str) -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", value), value


@pytest.mark.parametrize("sample", [SAMPLE, state()], ids=["with-entries", "empty"])
def test_rss_feeds_are_rss_2_0(sample: State) -> None:
    for path, (body, content_type) in render(sample).items():
        if content_type != RSS:
            continue
        rss = xml(body)
        assert (rss.tag, rss.get("version")) == ("rss", "2.0")
        (channel,) = rss.findall("channel")
        for tag in ("title", "link", "description", "language", "lastBuildDate"):
            assert channel.findtext(tag), (path, tag)
        assert channel.findtext("link", "").startswith(f"{BASE}/")
        self_link = channel.find(f"{A}link")
        assert self_link is not None
        assert self_link.get("href") == BASE + path.replace("?lang=id", "")
        for item in channel.findall("item"):
            for tag in ("title", "link", "description", "guid", "pubDate"):
                assert item.findtext(tag), (path, tag)
            assert parsedate_to_datetime(item.findtext("pubDate", "")).utcoffset() == timedelta(0)
        read(body)


def test_bare_path_speaks_the_site_language_and_lang_picks_one() -> None:
    files = render(SAMPLE)
    assert files["/history.atom"] == files["/history.atom?lang=id"]
    assert files["/history.rss"] == files["/history.rss?lang=id"]
    assert xml(files["/history.atom?lang=en"][0]).get(XML_LANG) == "en"
    assert read(files["/history.rss?lang=en"][0]).feed.language == "en"
    english_site = dataclasses.replace(CONFIG, site=dataclasses.replace(SITE, language="en"))
    in_english = render(SAMPLE, english_site)
    assert in_english["/updates.atom"] == in_english["/updates.atom?lang=en"]
    (first, *_) = entries(in_english["/updates.atom"][0])
    assert text(first, "title") == "Loket e-Meterai KCU Denpasar tutup — Resolved"
    # The English site's own links carry no ?lang=; Bahasa Indonesia is the one asked for.
    assert attribute(first, "link", "href") == f"{BASE}/incidents/inc1"
    (indonesian, *_) = entries(in_english["/updates.atom?lang=id"][0])
    assert attribute(indonesian, "link", "href") == f"{BASE}/incidents/inc1?lang=id"


def test_history_keeps_the_newest_and_any_older_one_still_open() -> None:
    still_open = incident("open", "Masih berlangsung", [("identified", "x", 0)], posted=0)
    closed = [
        incident(f"r{n}", f"Selesai {n}", [("resolved", "x", n + 1)], posted=n + 1)
        for n in range(HISTORY_LIMIT + 5)
    ]
    found = entries(render(state(still_open, *closed))["/history.atom"][0])
    ids = [text(e, "id").rsplit("/", 1)[1] for e in found]
    assert len(ids) == HISTORY_LIMIT + 1
    assert ids[0] == f"r{HISTORY_LIMIT + 4}"
    assert ids[-2:] == ["r5", "open"]


def test_updates_feed_keeps_the_newest_updates() -> None:
    many = incident(
        "busy", "Banyak pembaruan", [("identified", f"#{n}", n) for n in range(UPDATES_LIMIT + 3)]
    )
    found = entries(render(state(many))["/updates.atom"][0])
    assert len(found) == UPDATES_LIMIT
    assert text(found[0], "id").endswith(f"#update-busy-u{UPDATES_LIMIT + 2}")
    assert text(found[-1], "id").endswith("#update-busy-u3")


def test_feeds_depend_on_the_incidents_not_on_the_clock() -> None:
    """Same incidents → same bytes, so ETags hold between rebuilds."""
    first = render_feeds(SAMPLE, CONFIG, T0)
    later = render_feeds(SAMPLE, CONFIG, T0 + timedelta(days=3))
    assert first == later
