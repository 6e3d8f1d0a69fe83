"""parse_duration("1h30m") → timedelta; the one place config durations are read."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse "500ms", "30s", "20m", "1h30m", "2d"; raises ValueError on anything else."""
    compact = text.strip().replace(" ", "")
    parts = list(_PART.finditer(compact))
    if not compact or "".join(p.group(0) for p in parts) != compact:
        raise ValueError(f'expected a duration like "30s", "20m" or "1h30m", got "{text}"')
    seconds = sum(int(p.group(1)) * _UNITS[p.group(2)] for p in parts)
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration for whole seconds: 90s → "1m30s"."""
    total = int(value.total_seconds())
    if total == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
