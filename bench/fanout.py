"""Benchmark: an incident fanned out to N bot subscribers against the fake Bot API at Telegram's limits.

    .venv/bin/python bench/fanout.py --scenario free --subscribers 6000
    .venv/bin/python bench/fanout.py --scenario paid --subscribers 100000
    .venv/bin/python bench/fanout.py --scenario paid --subscribers 100000 --limit 800

`siaran serve` runs as its own process (SQLite in a temp dir, or --database) with the
subscriber bot and one channel on the same token; the fake Bot API runs in this process and
enforces the limits the scenario names (free: 30 messages/s per bot, paid broadcasts: 1000/s,
or --limit; 1/s per private chat and 20/min per channel either way) and answers 429 past
them. The bot's max_per_second is set to the same limit, and the channel posts with the same
token, so posts and DMs share one budget.
One incident at KCU Medan reaches every subscriber; meanwhile a notice for another branch is
written every few seconds, and each one's channel post is timed from the moment the staff
API answered 201 (the incident is written) to the moment the fake received the post.

Reported: delivered sendMessage/s at steady state (the middle 90% of the DMs) as a fraction
of the limit, 429s (all, and at steady state), subscribers who got nothing or twice, and the
channel-post latency p50/p99. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from status import db, tokens
from status.schema import bot_subscribers, bot_subscriptions
from tests.conftest import TEST_CONFIG, free_port, wait_for_port
from tests.fakes.telegram import FakeTelegram, Limits, Rate, fake_telegram

SCENARIOS = {"free": 30, "paid": 1000}
CHANNEL = "@statusemeterai"
FIRST_CHAT = 600_000_000
NOTICE_EVERY = 4.0  # seconds; a channel takes at most one post every 3 s


def config_text(fake: FakeTelegram, database: str, rate: int) -> str:
    return (
        TEST_CONFIG
        + f"""
[storage]
url = "{database}"

[telegram]
token_env = "SIARAN_TELEGRAM_TOKEN"
api_base_url = "{fake.url}/bot"

[[telegram.channel]]
chat = "{CHANNEL}"
components = ["*"]

[telegram.bot]
enabled = true
max_per_second = {rate}
"""
    )


async def prepare(database: str, count: int) -> str:
    """Migrate, add `count` subscribers following KCU Medan, and return an admin token."""
    engine = db.make_engine(database)
    try:
        await db.migrate(engine)
        now = datetime.now(UTC)
        for start in range(FIRST_CHAT, FIRST_CHAT + count, 10_000):
            chats = range(start, min(start + 10_000, FIRST_CHAT + count))
            async with db.write(engine) as conn:
                await conn.execute(
                    insert(bot_subscribers),
                    [
                        {"chat_id": c, "language": "id", "created_at": now, "updated_at": now}
                        for c in chats
                    ],
                )
                await conn.execute(
                    insert(bot_subscriptions),
                    [{"chat_id": c, "follow": "kcu-medan", "created_at": now} for c in chats],
                )
        _info, secret = await tokens.create_token(engine, "bench", ("admin",), now)
        return secret
    finally:
        await engine.dispose()


def is_dm(params: dict[str, object]) -> bool:
    chat = params.get("chat_id")
    return isinstance(chat, int) and chat > 0


async def post_incident(client: httpx.AsyncClient, name: str, component: str) -> float:
    """Write an incident through the staff API; returns when it was written (monotonic)."""
    answer = await client.post(
        "/api/v1/incidents",
        json={
            "name": name,
            "status": "identified",
            "impact": "major",
            "body": "Jaringan pusat terganggu.",
            "components": {component: "major_outage"},
        },
    )
    written = time.monotonic()
    answer.raise_for_status()
    return written


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    fake: FakeTelegram, port: int, secret: str, count: int, give_up_after: float
) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {secret}"}
    written: dict[str, float] = {}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
    ) as client:
        started = time.monotonic()
        written["Loket KCU Medan tutup"] = await post_incident(
            client, "Loket KCU Medan tutup", "kcu-medan"
        )
        n = 0
        while True:
            await asyncio.sleep(NOTICE_EVERY)
            delivered = sum(
                1 for c in fake.calls("sendMessage") if c.status == 200 and is_dm(c.params)
            )
            print(f"  {time.monotonic() - started:6.1f}s  {delivered} DMs", file=sys.stderr)
            if delivered >= count or time.monotonic() - started > give_up_after:
                break
            n += 1
            name = f"Pemberitahuan {n} KCU Jayapura"
            written[name] = await post_incident(client, name, "kcu-jayapura")
        await asyncio.sleep(NOTICE_EVERY)  # the last notice's post
    calls = fake.calls("sendMessage")
    ok = [c for c in calls if c.status == 200]
    dms = sorted(c.at for c in ok if is_dm(c.params))
    lo, hi = dms[len(dms) // 20], dms[len(dms) * 19 // 20 - 1]
    steady = [c for c in ok if lo <= c.at <= hi]
    rate = len(steady) / (hi - lo) if hi > lo else 0.0
    floods = [c for c in calls if c.status == 429]
    latencies = []
    for name, at in written.items():
        post = next(
            (
                c
                for c in ok
                if c.params.get("chat_id") == CHANNEL and name in str(c.params.get("text"))
            ),
            None,
        )
        if post is not None:
            latencies.append(post.at - at)
    per_chat: dict[int, int] = {}
    for c in ok:
        if is_dm(c.params):
            chat = int(str(c.params["chat_id"]))
            per_chat[chat] = per_chat.get(chat, 0) + 1
    return {
        "dms": len(dms),
        "rate": rate,
        "floods": len(floods),
        "steady_floods": sum(1 for c in floods if lo <= c.at <= hi),
        "channel_floods": sum(1 for c in floods if not is_dm(c.params)),
        "lost": count - len(per_chat),
        "twice": sum(1 for v in per_chat.values() if v > 1),
        "posts": len(latencies),
        "notices": len(written),
        "p50": percentile(latencies, 0.5) if latencies else float("nan"),
        "p99": percentile(latencies, 0.99) if latencies else float("nan"),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="paid")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument(
        "--limit", type=int, help="messages/s for the bot and the fake (default: the scenario's)"
    )
    parser.add_argument("--database", help="a PostgreSQL URL; default SQLite in a temp dir")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (seconds)")
    args = parser.parse_args()
    limit = args.limit or SCENARIOS[args.scenario]
    limits = Limits(bot=Rate(limit, 1.0))
    with tempfile.TemporaryDirectory() as tmp, fake_telegram(limits=limits) as fake:
        fake.add_channel(CHANNEL)
        for chat in range(FIRST_CHAT, FIRST_CHAT + args.subscribers):
            fake.add_user(chat)
        database = args.database or f"sqlite:///{tmp}/siaran.db"
        secret = asyncio.run(prepare(database, args.subscribers))
        config = Path(tmp) / "siaran.toml"
        config.write_text(config_text(fake, database, limit))
        port = free_port()
        env = {**os.environ, "SIARAN_TELEGRAM_TOKEN": fake.token, "PTB_TIMEDELTA": "true"}
        with open(Path(tmp) / "serve.log", "w+") as log:
            serve = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "status",
                    "serve",
                    "--config",
                    str(config),
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
            try:
                asyncio.run(wait_for_port(port, within=60))
                found = asyncio.run(measure(fake, port, secret, args.subscribers, args.timeout))
            finally:
                serve.send_signal(signal.SIGTERM)
                try:
                    serve.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    serve.kill()
                    serve.wait()
                log.seek(0)
                errors = [line for line in log if " ERROR " in line or "Traceback" in line]
                if errors:
                    print("".join(errors[:20]), file=sys.stderr)
    ratio = found["rate"] / limit
    print(
        f"fanout {args.scenario}: {args.subscribers} subscribers, limit {limit}/s: "
        f"{found['rate']:.1f} sendMessage/s at steady state = {ratio:.3f} of the limit; "
        f"429s {found['floods']:.0f} (steady state {found['steady_floods']:.0f}, "
        f"to the channel {found['channel_floods']:.0f}); "
        f"lost {found['lost']:.0f}, twice {found['twice']:.0f}; "
        f"channel post after the incident is written: p50 {found['p50']:.3f}s, "
        f"p99 {found['p99']:.3f}s ({found['posts']:.0f} of {found['notices']:.0f} posts)"
    )
    return 0 if found["lost"] == 0 and found["twice"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
