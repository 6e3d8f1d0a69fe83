"""Embedded simulator of the upstream e-Meterai API and branch queue systems, for `siaran demo` and tests.

Routes:

    GET  /api/{service}/health        service is purchase | stamping | download
    GET  /queues/{branch_id}          {"serving": S, "issued": I, "counters_open": C}
    GET  /queues/{branch_id}/nested   {"data": {"now": S, "last": I, "counters": C}}
    POST /control/services/{name}     {"mode": "up"|"down"|"slow"|"html"|"error", "delay": 3.0}
    POST /control/queues/{branch_id}  {"mode": "stalled"|"moving", "counters_open": 2}
    GET  /control                     every current mode, as JSON
    GET  /                            an HTML control page; its forms post to /control/form

Time comes only from the injected Clock, so a test with ManualClock decides what the queues
show. The one real wait is the `slow` mode's asyncio.sleep: it exists to make an HTTP client
time out for real.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from status.clock import Clock
from status.config import SLUG

SERVICES = ("purchase", "stamping", "download")
SERVICE_MODES = ("up", "down", "slow", "html", "error")
QUEUE_MODES = ("moving", "stalled")

SERVE_EVERY = 4.0  # seconds per ticket at one open counter
BACKLOG = 40  # tickets that pile up in the first minutes, like the 05:00 crowd in Medan
BACKLOG_BUILDS = 60.0  # seconds: time constant of that pile-up
STALLED_ARRIVAL_EVERY = 15.0  # seconds per new ticket while nobody is served
DEFAULT_DELAY = 3.0
MAX_DELAY = 60.0
MAX_COUNTERS = 20
MAX_BODY = 16 * 1024

HEALTHY: Mapping[str, Any] = {
    "status": "UP",
    "data": {"available": True},
    "stock": 125000,
    "errors": [],
}
DOWN: Mapping[str, Any] = {"status": "DOWN", "errors": ["upstream timeout"]}
# What a misconfigured gateway in front of the upstream answers: a 200 that is not the API.
GATEWAY_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)
ERROR_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>"
    "<body><h1>Internal Server Error</h1><p>The server encountered an unexpected condition.</p>"
    "</body></html>\n"
)


@dataclass(frozen=True, slots=True)
class ScriptStep:
    """At `after` since the simulator started, set `target` (a service name or a branch id) to `mode`."""

    after: timedelta
    target: str
    mode: str


# The story `siaran demo` tells: the Medan queue freezes, then the purchase API fails and recovers.
# The demo's story, in seconds after start (stall_after is 20 s in demo.toml):
#   10  KCU Medan's queue stops moving      → ~30 s: a branch incident of its own
#   10  KCU Denpasar's too                  → nothing while Denpasar is closed (WITA hours)
#   60  the purchase API goes down          → ~64 s: one upstream incident
#   65  KCU Jakarta Pusat's queue stops     → ~85 s: folded into the upstream incident
#  120  the purchase API is back            → monitoring, resolved 30 s later
#  125  Jakarta Pusat moves again; 160: Medan and Denpasar move again
DEMO_SCRIPT: tuple[ScriptStep, ...] = (
    ScriptStep(timedelta(seconds=10), "kcu-medan", "stalled"),
    ScriptStep(timedelta(seconds=10), "kcu-denpasar", "stalled"),
    ScriptStep(timedelta(seconds=60), "purchase", "down"),
    ScriptStep(timedelta(seconds=65), "kcu-jakarta-pusat", "stalled"),
    ScriptStep(timedelta(seconds=120), "purchase", "up"),
    ScriptStep(timedelta(seconds=125), "kcu-jakarta-pusat", "moving"),
    ScriptStep(timedelta(seconds=160), "kcu-medan", "moving"),
    ScriptStep(timedelta(seconds=160), "kcu-denpasar", "moving"),
)


class InputError(Exception):
    """Bad control input; answered as {"error": {"code", "message", "field"}} with `status`."""

    def __init__(self, message: str, field: str, *, status: int = 400, code: str = "invalid"):
        super().__init__(message)
        self.message, self.field, self.status, self.code = message, field, status, code


@dataclass(slots=True)
class _Service:
    mode: str = "up"
    delay: float = DEFAULT_DELAY


@dataclass(slots=True)
class _Queue:
    """One branch queue: numbers are a pure function of time within the current segment.

    A segment starts when the queue is created or its mode or counters change; the numbers
    reached at that moment become the segment's base, so history never jumps.
    """

    mode: str
    counters_open: int
    since: datetime
    base_serving: int
    base_issued: int

    def numbers(self, at: datetime) -> tuple[int, int]:
        """(serving, issued) at `at`; both only grow, and issued >= serving always."""
        elapsed = max(0.0, (at - self.since).total_seconds())
        if self.mode == "stalled":
            return self.base_serving, self.base_issued + int(elapsed // STALLED_ARRIVAL_EVERY)
        served = elapsed * self.counters_open / SERVE_EVERY
        backlog = BACKLOG * (1.0 - math.exp(-elapsed / BACKLOG_BUILDS))
        # floor(x + b) >= floor(x) for b >= 0, so the queue length never goes negative.
        return self.base_serving + int(served), self.base_issued + int(served + backlog)

    def change(self, at: datetime, *, mode: str | None, counters_open: int | None) -> None:
        at = max(at, self.since)
        self.base_serving, self.base_issued = self.numbers(at)
        self.since = at
        if mode is not None:
            self.mode = mode
        if counters_open is not None:
            self.counters_open = counters_open


def _new_queue(branch_id: str, since: datetime) -> _Queue:
    """Deterministic defaults per branch id (crc32, not hash(): that one is salted per process)."""
    seed = zlib.crc32(branch_id.encode())
    serving = 1 + seed % 60
    return _Queue(
        mode="moving",
        counters_open=1 + (seed >> 8) % 3,
        since=since,
        base_serving=serving,
        base_issued=serving + 8 + (seed >> 16) % 25,
    )


def _check_script(script: Sequence[ScriptStep]) -> None:
    for step in script:
        if step.after < timedelta(0):
            raise ValueError(f"script step for {step.target!r} has a negative `after`")
        if step.target in SERVICES:
            if step.mode not in SERVICE_MODES:
                raise ValueError(f"service mode must be one of {SERVICE_MODES}, got {step.mode!r}")
        elif not SLUG.match(step.target):
            raise ValueError(f"script target {step.target!r} is neither a service nor a branch id")
        elif step.mode not in QUEUE_MODES:
            raise ValueError(f"queue mode must be one of {QUEUE_MODES}, got {step.mode!r}")


class _Simulator:
    def __init__(self, clock: Clock, script: Sequence[ScriptStep]) -> None:
        _check_script(script)
        self.clock = clock
        self.started_at = clock.now()
        self.script = sorted(script, key=lambda step: step.after)
        self.applied = 0
        self.services = {name: _Service() for name in SERVICES}
        self.queues: dict[str, _Queue] = {}

    def catch_up(self) -> datetime:
        """Apply every script step that is due, at its own time; return now."""
        now = self.clock.now()
        while self.applied < len(self.script):
            step = self.script[self.applied]
            at = self.started_at + step.after
            if at > now:
                break
            self.applied += 1
            if step.target in SERVICES:
                self.services[step.target].mode = step.mode
            else:
                self.queue(step.target).change(at, mode=step.mode, counters_open=None)
        return now

    def queue(self, branch_id: str) -> _Queue:
        if not SLUG.match(branch_id):
            raise InputError(
                f'unknown branch "{branch_id}"; ids look like "kcu-medan"',
                "branch_id",
                status=404,
                code="not_found",
            )
        if branch_id not in self.queues:
            # Every queue starts at the simulator's start, so what it shows depends on time,
            # not on when it was first asked.
            self.queues[branch_id] = _new_queue(branch_id, self.started_at)
        return self.queues[branch_id]

    def service(self, name: str) -> _Service:
        if name not in self.services:
            raise InputError(
                f'unknown service "{name}"; expected one of {", ".join(SERVICES)}',
                "name",
                status=404,
                code="not_found",
            )
        return self.services[name]

    def set_service(self, name: str, fields: Mapping[str, object]) -> None:
        service = self.service(name)
        _reject_unknown(fields, ("mode", "delay"))
        mode = _choice(fields.get("mode"), SERVICE_MODES, "mode")
        delay = fields.get("delay")
        if delay is not None:
            if isinstance(delay, bool) or not isinstance(delay, int | float):
                raise InputError("delay must be a number of seconds", "delay")
            if not 0 <= delay <= MAX_DELAY:  # also refuses NaN
                raise InputError(f"delay must be between 0 and {MAX_DELAY:g} seconds", "delay")
            service.delay = float(delay)
        service.mode = mode

    def set_queue(self, branch_id: str, fields: Mapping[str, object], now: datetime) -> None:
        queue = self.queue(branch_id)
        _reject_unknown(fields, ("mode", "counters_open"))
        if "mode" not in fields and "counters_open" not in fields:
            raise InputError('give "mode" ("stalled" or "moving") or "counters_open"', "mode")
        mode = _choice(fields["mode"], QUEUE_MODES, "mode") if "mode" in fields else None
        counters = fields.get("counters_open")
        if counters is not None and (
            isinstance(counters, bool)
            or not isinstance(counters, int)
            or not 0 <= counters <= MAX_COUNTERS
        ):
            raise InputError(
                f"counters_open must be a whole number 0-{MAX_COUNTERS}", "counters_open"
            )
        queue.change(now, mode=mode, counters_open=counters)

    def state(self, now: datetime) -> dict[str, Any]:
        queues = {}
        for branch_id, queue in sorted(self.queues.items()):
            serving, issued = queue.numbers(now)
            queues[branch_id] = {
                "mode": queue.mode,
                "counters_open": queue.counters_open,
                "serving": serving,
                "issued": issued,
            }
        return {
            "started_at": self.started_at.isoformat(),
            "elapsed": (now - self.started_at).total_seconds(),
            "services": {
                name: {"mode": s.mode, "delay": s.delay} for name, s in self.services.items()
            },
            "queues": queues,
            "script": [
                {
                    "after": step.after.total_seconds(),
                    "target": step.target,
                    "mode": step.mode,
                    "applied": i < self.applied,
                }
                for i, step in enumerate(self.script)
            ],
        }


def _reject_unknown(fields: Mapping[str, object], allowed: Sequence[str]) -> None:
    for key in fields:
        if key not in allowed:
            raise InputError(f"unknown key; allowed keys are {', '.join(allowed)}", key)


def _choice(value: object, allowed: Sequence[str], field: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{field} must be one of {', '.join(allowed)}", field)
    return value


async def _json_object(request: Request) -> dict[str, object]:
    try:
        value = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise InputError("body must be a JSON object", "body") from None
    if not isinstance(value, dict):
        raise InputError("body must be a JSON object", "body")
    return value


async def _form(request: Request) -> dict[str, str]:
    """Urlencoded form fields, last value wins (request.form() would need python-multipart)."""
    try:
        text = (await request.body()).decode("utf-8")
        parsed = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise InputError("body must be an urlencoded form", "body") from None
    return {key: values[-1] for key, values in parsed.items()}


def _number(text: str | None, cast: type[int] | type[float], field: str) -> int | float | None:
    if text is None or text == "":
        return None
    try:
        return cast(text)
    except ValueError:
        raise InputError(f"{field} must be a number", field) from None


def create_simulator(clock: Clock, script: Sequence[ScriptStep] = ()) -> Starlette:
    """The simulator as an ASGI app; `script` steps apply lazily as `clock` passes them.

    Raises ValueError when a script step names an unknown mode or an impossible target.
    """
    sim = _Simulator(clock, script)

    async def health(request: Request) -> Response:
        sim.catch_up()
        service = sim.service(request.path_params["service"])
        if service.mode == "down":
            return JSONResponse(DOWN, status_code=503)
        if service.mode == "html":
            return HTMLResponse(GATEWAY_PAGE)
        if service.mode == "error":
            return HTMLResponse(ERROR_PAGE, status_code=500)
        if service.mode == "slow":
            await asyncio.sleep(service.delay)  # real time on purpose: clients must time out
        return JSONResponse(HEALTHY)

    async def queue_flat(request: Request) -> Response:
        now = sim.catch_up()
        queue = sim.queue(request.path_params["branch_id"])
        serving, issued = queue.numbers(now)
        return JSONResponse(
            {"serving": serving, "issued": issued, "counters_open": queue.counters_open}
        )

    async def queue_nested(request: Request) -> Response:
        now = sim.catch_up()
        queue = sim.queue(request.path_params["branch_id"])
        serving, issued = queue.numbers(now)
        return JSONResponse(
            {"data": {"now": serving, "last": issued, "counters": queue.counters_open}}
        )

    async def control_service(request: Request) -> Response:
        sim.catch_up()
        name = request.path_params["name"]
        sim.service(name)  # 404 before 400: an unknown service is the bigger mistake
        sim.set_service(name, await _json_object(request))
        return JSONResponse(sim.state(sim.clock.now())["services"][name])

    async def control_queue(request: Request) -> Response:
        now = sim.catch_up()
        branch_id = request.path_params["branch_id"]
        sim.queue(branch_id)
        sim.set_queue(branch_id, await _json_object(request), now)
        return JSONResponse(sim.state(now)["queues"][branch_id])

    async def control_state(request: Request) -> Response:
        return JSONResponse(sim.state(sim.catch_up()))

    async def control_form(request: Request) -> Response:
        now = sim.catch_up()
        fields = _form_fields(await _form(request))
        if "service" in fields:
            name = str(fields.pop("service"))
            sim.service(name)
            sim.set_service(name, fields)
        elif "queue" in fields:
            branch_id = str(fields.pop("queue"))
            sim.queue(branch_id)
            sim.set_queue(branch_id, fields, now)
        else:
            raise InputError('the form needs a "service" or a "queue" field', "service")
        return RedirectResponse("/", status_code=303)

    async def page(request: Request) -> Response:
        return HTMLResponse(_render_page(sim.state(sim.catch_up())))

    async def input_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, InputError):  # registered for InputError only
            raise exc
        error = {"code": exc.code, "message": exc.message, "field": exc.field}
        return JSONResponse({"error": error}, status_code=exc.status)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/api/{service}/health", health, methods=["GET"]),
        Route("/queues/{branch_id}", queue_flat, methods=["GET"]),
        Route("/queues/{branch_id}/nested", queue_nested, methods=["GET"]),
        Route("/control", control_state, methods=["GET"]),
        Route("/control/form", control_form, methods=["POST"]),
        Route("/control/services/{name}", control_service, methods=["POST"]),
        Route("/control/queues/{branch_id}", control_queue, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={InputError: input_error},
        max_body_size=MAX_BODY,
    )


def _form_fields(form: Mapping[str, str]) -> dict[str, object]:
    """Form strings → the same typed fields the JSON control endpoints take."""
    fields: dict[str, object] = {key: value for key, value in form.items() if value != ""}
    for key, cast in (("delay", float), ("counters_open", int)):
        if key in fields:
            fields[key] = _number(form[key], cast, key)
    return fields


def _button_form(kind: str, target: str, modes: Sequence[str], current: str) -> str:
    buttons = "".join(
        f'<button name="mode" value="{html.escape(mode)}"'
        f"{' disabled' if mode == current else ''}>{html.escape(mode)}</button> "
        for mode in modes
    )
    return (
        '<form method="post" action="/control/form">'
        f'<input type="hidden" name="{kind}" value="{html.escape(target)}">{buttons}</form>'
    )


def _render_page(state: Mapping[str, Any]) -> str:
    rows = []
    for name, service in state["services"].items():
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(service['mode'])}</td>"
            f"<td>{_button_form('service', name, SERVICE_MODES, service['mode'])}</td></tr>"
        )
    queue_rows = []
    for branch_id, queue in state["queues"].items():
        queue_rows.append(
            f"<tr><td>{html.escape(branch_id)}</td><td>{html.escape(queue['mode'])}</td>"
            f"<td>{queue['serving']}</td><td>{queue['issued']}</td>"
            f"<td>{queue['counters_open']}</td>"
            f"<td>{_button_form('queue', branch_id, QUEUE_MODES, queue['mode'])}</td></tr>"
        )
    if not queue_rows:
        queue_rows.append('<tr><td colspan="6">No queue has been asked for yet.</td></tr>')
    script_rows = [
        f"<li>{'done' if step['applied'] else 'due'} at {step['after']:g}s: "
        f"{html.escape(step['target'])} → {html.escape(step['mode'])}</li>"
        for step in state["script"]
    ]
    script = f"<h2>Script</h2><ul>{''.join(script_rows)}</ul>" if script_rows else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Siaran demo simulator</title>"
        "<style>body{font-family:sans-serif;margin:2rem}td,th{padding:.3rem .6rem;"
        "text-align:left}button[disabled]{font-weight:bold}</style></head><body>"
        "<h1>Siaran demo simulator</h1>"
        f"<p>{state['elapsed']:.0f} s since start. Reload to refresh.</p>"
        "<h2>Upstream services</h2><table><tr><th>service</th><th>mode</th><th>set</th></tr>"
        f"{''.join(rows)}</table>"
        "<h2>Branch queues</h2><table><tr><th>branch</th><th>mode</th><th>serving</th>"
        f"<th>issued</th><th>counters</th><th>set</th></tr>{''.join(queue_rows)}</table>"
        f"{script}</body></html>\n"
    )
