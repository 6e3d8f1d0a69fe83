"""Branch queue: fetch JSON, map dotted queue_fields, pure stall detection.

Errors:

    QueueError
     ├── QueueFetchError    no JSON document: timeout, connect failure, non-2xx, not JSON, too big
     └── QueueFormatError   (also a ValueError) the JSON lacks a mapped field, or it is no whole number

Decisions, so the prober, the staff API and the page agree:

- Numbers are whole and >= 0. JSON integers and strings of ASCII digits ("37") are accepted,
  because queue systems behind PHP often send numbers as strings; floats, booleans, null and
  negative numbers are format errors. A missing or null `counters_open` is None unless the
  branch maps it explicitly, in which case it must be there.
- `issued < serving` is not an error: ticket machines and callers reset at day start at
  slightly different moments. The queue length is then 0.
- `serving` going down is a reset (a new day): it counts as a move and the rate starts afresh.
- `last_move_at` is where the stall clock runs from: the last reading in which `serving` moved,
  the queue was empty before, or the branch had just opened. Time spent closed or with nobody
  waiting never counts towards a stall.
- Staff-entered states (`manual_queue_state`) are never stalled: staff type numbers now and
  then, so "not moving" would only measure how often they type.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, overload

import httpx

from status.render.statuspage import iso

MAX_BODY = 64 * 1024  # a queue document is a few hundred bytes; anything bigger is the wrong URL
MIN_RATE_SPAN = timedelta(minutes=1)
SAMPLES_PER_WINDOW = 60  # samples are thinned to about one per window/60 so memory stays small

Sample = tuple[datetime, int]  # (at, serving)
Source = Literal["probe", "manual"]


class QueueError(Exception):
    """Base of every queue check failure."""


class QueueFetchError(QueueError):
    """No JSON document could be had; `reason` is short English for ops ("HTTP 503")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class QueueFormatError(QueueError, ValueError):
    """The document is JSON but lacks a mapped field, or a field is not a whole number >= 0."""


@dataclass(frozen=True, slots=True)
class QueueReading:
    serving: int  # the ticket number now being called
    issued: int  # the last ticket handed out
    counters_open: int | None
    at: datetime  # aware UTC


@dataclass(frozen=True, slots=True)
class QueueState:
    serving: int
    issued: int
    counters_open: int | None
    length: int  # max(issued - serving, 0)
    last_move_at: datetime  # the stall clock runs from here (see the module docstring)
    served_per_hour: float | None  # None until samples span MIN_RATE_SPAN
    estimated_wait: timedelta | None  # 0 when empty; None when the rate is unknown or zero
    stalled: bool
    is_open: bool
    read_at: datetime
    samples: tuple[Sample, ...]  # (at, serving) within the rate window, oldest first
    source: Source


def _resolve(doc: object, path: str) -> tuple[bool, object]:
    """Walk a dotted path through objects (and lists, by index); (found, value)."""
    current = doc
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdecimal() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def _whole(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdecimal() and len(value) <= 18:
        return int(value)
    return None


def _number(doc: object, path: str, name: str) -> int:
    where = f'"{path}"' if path == name else f'"{path}" ({name})'
    found, value = _resolve(doc, path)
    if not found:
        raise QueueFormatError(f"queue JSON has no {where}")
    number = _whole(value)
    if number is None:
        shown = json.dumps(value, ensure_ascii=False)[:40]
        raise QueueFormatError(f"queue JSON {where} should be a whole number, got {shown}")
    return number


def parse_queue(doc: object, fields: Mapping[str, str], at: datetime) -> QueueReading:
    """Read serving/issued/counters_open from a queue document, following `fields` paths.

    `fields` maps our name to a dotted path in their JSON ({"serving": "data.now"}); a name it
    leaves out is read from the top level under our own name. A path step that is a number
    indexes a list ("branches.0.now"). Raises QueueFormatError naming the path, e.g.
    'queue JSON has no "data.now" (serving)'.
    """
    serving = _number(doc, fields.get("serving", "serving"), "serving")
    issued = _number(doc, fields.get("issued", "issued"), "issued")
    counters_path = fields.get("counters_open")
    if counters_path is not None:
        counters: int | None = _number(doc, counters_path, "counters_open")
    else:
        found, value = _resolve(doc, "counters_open")
        absent = not found or value is None
        counters = None if absent else _number(doc, "counters_open", "counters_open")
    return QueueReading(serving, issued, counters, at)


def _rate(samples: tuple[Sample, ...], rate_window: timedelta) -> float | None:
    if len(samples) < 2:
        return None
    (first_at, first), (last_at, last) = samples[0], samples[-1]
    span = last_at - first_at
    if span < min(MIN_RATE_SPAN, rate_window):
        return None
    return (last - first) * 3600 / span.total_seconds()


def _advance(
    previous: QueueState | None,
    reading: QueueReading,
    *,
    is_open: bool,
    stall_after: timedelta,
    rate_window: timedelta,
    source: Source,
) -> QueueState:
    at, serving = reading.at, reading.serving
    length = max(reading.issued - serving, 0)
    # A reset (serving went down: a new day) or an opening starts the stall clock and the rate afresh.
    if previous is None or serving < previous.serving or (is_open and not previous.is_open):
        samples: tuple[Sample, ...] = ((at, serving),)
        last_move_at = at
    else:
        kept = [s for s in previous.samples if at - rate_window <= s[0] < at]
        # Keep at most one sample per window/60: replace the newest while it is still too close.
        if len(kept) >= 2 and kept[-1][0] - kept[-2][0] < rate_window / SAMPLES_PER_WINDOW:
            kept.pop()
        samples = (*kept, (at, serving))
        restart = serving != previous.serving or previous.length == 0
        last_move_at = at if restart else previous.last_move_at
    rate = _rate(samples, rate_window)
    if length == 0:
        wait: timedelta | None = timedelta(0)
    elif rate:
        wait = timedelta(seconds=round(length * 3600 / rate))
    else:
        wait = None
    stalled = source == "probe" and is_open and length > 0 and at - last_move_at >= stall_after
    return QueueState(
        serving=serving,
        issued=reading.issued,
        counters_open=reading.counters_open,
        length=length,
        last_move_at=last_move_at,
        served_per_hour=rate,
        estimated_wait=wait,
        stalled=stalled,
        is_open=is_open,
        read_at=at,
        samples=samples,
        source=source,
    )


def next_queue_state(
    previous: QueueState | None,
    reading: QueueReading,
    *,
    is_open: bool,
    stall_after: timedelta,
    rate_window: timedelta = timedelta(hours=1),
) -> QueueState:
    """The queue state after `reading`; pure. Stalled = open, not empty, no move for stall_after."""
    return _advance(
        previous,
        reading,
        is_open=is_open,
        stall_after=stall_after,
        rate_window=rate_window,
        source="probe",
    )


def manual_queue_state(
    serving: int,
    issued: int,
    counters_open: int | None,
    at: datetime,
    previous: QueueState | None,
    *,
    is_open: bool = True,
    rate_window: timedelta = timedelta(hours=1),
) -> QueueState:
    """A state from numbers staff typed in; same derivations, never stalled.

    Raises QueueFormatError when a number is not a whole number >= 0.
    """
    for name, value in (("serving", serving), ("issued", issued), ("counters_open", counters_open)):
        if _whole(value) is None and not (name == "counters_open" and value is None):
            raise QueueFormatError(f"{name} should be a whole number, got {value!r}")
    reading = QueueReading(serving, issued, counters_open, at)
    return _advance(
        previous,
        reading,
        is_open=is_open,
        stall_after=timedelta.max,
        rate_window=rate_window,
        source="manual",
    )


async def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_BODY:
            raise QueueFetchError(f"response larger than {MAX_BODY // 1024} KiB")
    return bytes(body)


async def fetch_queue(
    http: httpx.AsyncClient,
    url: str,
    fields: Mapping[str, str],
    timeout: timedelta,  # noqa: ASYNC109 -- per-branch config, applied below with asyncio.timeout
    at: datetime,
) -> QueueReading:
    """GET `url` and parse it; returns or raises within `timeout` (a total deadline).

    Raises QueueFetchError for a timeout, a connection failure, a non-2xx answer (redirects
    are not followed), a body over MAX_BODY or one that is not JSON; QueueFormatError for JSON
    of the wrong shape.
    """
    seconds = timeout.total_seconds()
    try:
        # httpx's timeout bounds each phase; asyncio.timeout bounds the whole exchange, so a
        # server that drips one byte at a time cannot hold a poll for longer than `timeout`.
        async with asyncio.timeout(seconds):
            headers = {"accept": "application/json"}
            async with http.stream("GET", url, headers=headers, timeout=seconds) as response:
                if not response.is_success:
                    raise QueueFetchError(f"HTTP {response.status_code}")
                media_type = response.headers.get("content-type", "").split(";")[0].strip()
                body = await _read_capped(response)
    except (TimeoutError, httpx.TimeoutException):
        raise QueueFetchError(f"timed out after {seconds:g}s") from None
    except httpx.ConnectError:
        raise QueueFetchError("could not connect") from None
    except httpx.RequestError as exc:
        raise QueueFetchError(f"request failed ({type(exc).__name__})") from None
    try:
        doc: Any = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested arrays
        raise QueueFetchError(f"not JSON ({media_type or 'no content type'})") from None
    return parse_queue(doc, fields, at)


@overload
def queue_dict(state: QueueState, lang: str) -> dict[str, Any]: ...
@overload
def queue_dict(state: None, lang: str) -> None: ...
def queue_dict(state: QueueState | None, lang: str) -> dict[str, Any] | None:
    """The "queue" object of /api/v1/branches; None (JSON null) when there is no state yet.

    The shape carries numbers and times only, so `lang` does not change it today; it is taken
    so callers treat this like every other renderer.
    """
    if state is None:
        return None
    rate = None if state.served_per_hour is None else round(state.served_per_hour, 1)
    wait = state.estimated_wait
    return {
        "serving": state.serving,
        "issued": state.issued,
        "counters_open": state.counters_open,
        "length": state.length,
        "served_per_hour": rate,
        # Rounded up: a short wait shows as 1 minute, never as 0 while people are waiting.
        "estimated_wait_minutes": None if wait is None else math.ceil(wait.total_seconds() / 60),
        "stalled": state.stalled,
        "last_move_at": iso(state.last_move_at),
        "read_at": iso(state.read_at),
        "source": state.source,
    }
