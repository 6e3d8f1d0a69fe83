"""t(key, lang) over the locale files; local time formatting with zone abbreviation.

A language's messages are `locales/<lang>.toml` plus every `locales/<lang>/*.toml` (one file
per feature: feeds, page, console…), merged; a key defined twice is a mistake and raises.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from status.hours import zone_abbreviation

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"
_LOCALES = Path(__file__).parent / "locales"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


@cache
def catalog(lang: str) -> Mapping[str, str]:
    """Every message of one language, keyed "section.key"."""
    files = [_LOCALES / f"{lang}.toml", *sorted((_LOCALES / lang).glob("*.toml"))]
    merged: dict[str, str] = {}
    for path in files:
        if not path.is_file():
            continue
        with path.open("rb") as fh:
            messages = _flatten(tomllib.load(fh))
        twice = merged.keys() & messages.keys()
        if twice:
            raise ValueError(f"{path}: messages already defined elsewhere: {sorted(twice)}")
        merged.update(messages)
    return merged


def t(key: str, lang: str, **values: object) -> str:
    """The message `key` in `lang` (falling back to Bahasa Indonesia), formatted with `values`."""
    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    text = catalog(lang).get(key) or catalog(DEFAULT_LANGUAGE)[key]
    return text.format(**values) if values else text


def pick_language(requested: str | None, accept_language: str | None, default: str) -> str:
    """?lang= wins, then the browser's Accept-Language, then the site default."""
    if requested in LANGUAGES:
        return requested
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return default


def format_local(at: datetime, zone: ZoneInfo, lang: str, *, with_date: bool = False) -> str:
    """ "10.30 WITA" (id) or "10:30 WITA" (en); with_date prefixes "Senin 23-11-2026"."""
    local = at.astimezone(zone)
    clock = local.strftime("%H.%M" if lang == "id" else "%H:%M")
    text = f"{clock} {zone_abbreviation(zone, at)}"
    if with_date:
        day = t(f"weekday.{local.weekday()}", lang)
        text = (
            f"{day} {local:%d-%m-%Y} {text}" if lang == "id" else f"{day} {local:%Y-%m-%d} {text}"
        )
    return text
