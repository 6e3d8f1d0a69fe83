"""What a post will say before it is sent: the Telegram channel post, by the broadcaster's own
pure renderer, and the public page's wording of the same update.

The incident's id does not exist before it is sent, so the post's link ends in "…"; everything
else is the text the channel will get (component statuses as requested: the post shows the
derived status, which differs only when another open incident already holds that component
worse).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup

from broadcasters._telegram_text import Post, View, render_post, status_word, word, zone_for
from status.config import Config
from status.i18n import format_local


@dataclass(frozen=True, slots=True)
class TelegramPreview:
    chat: str
    language: str
    html: Markup  # Telegram HTML: user text escaped by the renderer, only <b> added


@dataclass(frozen=True, slots=True)
class PagePreview:
    name: str
    status_word: str
    body: str
    at: str
    components: tuple[tuple[str, str], ...]  # (name, status word)


def _views(config: Config) -> list[tuple[str, View]]:
    """Each configured channel's view; the site's language and zone when there are none."""
    raw = config.document.get("telegram")
    if raw is not None:
        from broadcasters.telegram import parse_config, view_for

        channels = parse_config(raw, config).channels
        if channels:
            return [(c.chat, view_for(c, config)) for c in channels]
    zone = ZoneInfo(config.site.timezone)
    branch_zones = {b.id: b.zone for b in config.branches}
    return [("", View(config.site.language, zone, None, branch_zones))]


def telegram(
    config: Config,
    *,
    maintenance: bool,
    status: str,
    name: str,
    body: str,
    components: Mapping[str, str],
    at: datetime,
    incident_id: str = "",
) -> list[TelegramPreview]:
    """One preview per channel (chats with the same language and zone read alike; both shown)."""
    names = _names(config)
    link = f"{config.site.public_url.rstrip('/')}/incidents/{incident_id or '…'}"
    post = Post(
        maintenance=maintenance,
        status=status,
        name=name,
        body=body,
        at=at,
        link=link,
        components=tuple((names.get(c, c), s) for c, s in components.items()),
    )
    out = []
    for chat, view in _views(config):
        zone = zone_for(view, components)
        # render_post escapes every string it is given and adds only <b>: safe to show as HTML.
        html = render_post(post, view.language, zone)
        out.append(TelegramPreview(chat, view.language, Markup(html)))  # noqa: S704
    return out


def page(
    config: Config,
    lang: str,
    *,
    maintenance: bool,
    status: str,
    name: str,
    body: str,
    components: Mapping[str, str],
    at: datetime,
) -> PagePreview:
    zone = ZoneInfo(config.site.timezone)
    names = _names(config)
    return PagePreview(
        name=name.strip(),
        status_word=status_word(status, maintenance=maintenance, lang=lang),
        body=body.strip(),
        at=format_local(at, zone, lang, with_date=True),
        components=tuple(
            (names.get(c, c), _component_word(s, lang)) for c, s in components.items()
        ),
    )


def _component_word(status: str, lang: str) -> str:
    return word(f"component_status.{status}", lang, status)


def _names(config: Config) -> dict[str, str]:
    names = {c.id: c.name for c in config.components}
    names.update({b.id: b.name for b in config.branches})
    return names
