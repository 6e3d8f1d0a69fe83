"""`siaran` entry point: init, serve, demo, migrate, check-config, deliveries, token …; thin.

Results a script may capture go to stdout (a new token, alone); everything else to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.types import ASGIApp

import broadcasters
from status import __version__, db, delivery_log, tokens
from status.clock import SystemClock
from status.config import Config, ConfigError, database_url, load_config, load_config_text
from status.hours import DAYS
from status.web.asgi import wired_app

log = logging.getLogger("siaran")
DEMO_DIR = Path(__file__).parent / "demo"


def _configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL at INFO, and a Bot API URL contains the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # Alembic narrates every plugin it loads; only its warnings matter to an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _default_config() -> str:
    return os.environ.get("SIARAN_CONFIG", "siaran.toml")


def _extra_tables() -> tuple[str, ...]:
    """Top-level tables owned by broadcasters (each parses its own)."""
    return broadcasters.tables()


def _load(path: str) -> Config:
    return load_config(path, extra_tables=_extra_tables())


async def _serve(
    config: Config, host: str, port: int, *, extra: Sequence[tuple[ASGIApp, int]] = ()
) -> None:
    """Serve until SIGINT/SIGTERM, then stop gracefully; `extra` are more (app, port) pairs."""
    from status.web.http_server import EmbeddedServer, http_server

    limit = _connection_limit()
    async with wired_app(config, os.environ) as app:
        servers = [http_server(each, host, p, limit) for each, p in [(app, port), *extra]]
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for server in servers:
                server.stop()

        async def run(server: EmbeddedServer) -> None:
            try:
                await server.serve()  # a server that cannot start raises SystemExit
            finally:
                stop()  # one server down (stopped or failed to start) takes the others along

        # The servers leave signals to their owner: a supervisor's SIGTERM is a clean stop.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        log.info("serving %s on http://%s:%d", config.site.name, host, port)
        try:
            await asyncio.gather(*(run(server) for server in servers))
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


MAX_CONNECTIONS = 10_000


def _connection_limit() -> int:
    """Raise the open-files limit as far as allowed; how many connections fit under it."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
            soft = ceiling
        except (ValueError, OSError):  # a container may forbid it: serve what fits
            log.warning("could not raise the open-files limit above %d", soft)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    # Room for the database, logs and outbound clients beside the connections.
    return max(128, min(MAX_CONNECTIONS, soft - 256))


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop: the same code, a faster event loop (libuv)."""
    import uvloop

    uvloop.run(main)


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args.config)
    _run(_serve(config, args.host, args.port))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    config = _load(args.config)

    async def run() -> None:
        engine = db.make_engine(database_url(config, os.environ))
        try:
            await db.migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("database is up to date", file=sys.stderr)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    print(
        f"{args.config}: ok ({len(config.components)} components, {len(config.branches)} "
        f"branches, {len(config.checks)} checks)",
        file=sys.stderr,
    )
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.config)
    if target.exists() and not args.force:
        print(f"{target} already exists; use --force to overwrite it", file=sys.stderr)
        return 1
    target.write_text((DEMO_DIR / "starter.toml").read_text(encoding="utf-8"), encoding="utf-8")
    print(f"wrote {target}; edit it, then run: siaran serve --config {target}", file=sys.stderr)
    return 0


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def demo_text(simulator_url: str, public_url: str, now: datetime) -> str:
    """The demo config with its placeholders filled (see status/demo/demo.toml)."""
    text = (DEMO_DIR / "demo.toml").read_text(encoding="utf-8")
    yesterday = (now.astimezone(ZoneInfo("Asia/Makassar")) - timedelta(days=1)).weekday()
    return text.format(simulator=simulator_url, public_url=public_url, closed_today=DAYS[yesterday])


def demo_config(simulator_url: str, public_url: str, database: str, now: datetime) -> Config:
    text = demo_text(simulator_url, public_url, now)
    text = text.replace("sqlite:///siaran-demo.db", database)
    return load_config_text(text, "<demo>", extra_tables=_extra_tables())


def cmd_demo(args: argparse.Namespace) -> int:
    from status.demo.simulator import DEMO_SCRIPT, create_simulator

    clock = SystemClock()
    sim_port = _free_port(args.host)
    sim_url = f"http://{args.host}:{sim_port}"
    public_url = f"http://{args.host}:{args.port}"
    config = demo_config(
        sim_url, public_url, os.environ.get("SIARAN_DATABASE_URL", args.database), clock.now()
    )
    simulator = create_simulator(clock, DEMO_SCRIPT)

    async def run() -> None:
        engine = db.make_engine(database_url(config, os.environ))
        try:
            await db.migrate(engine)
            _info, secret = await tokens.create_token(engine, "demo admin", ("admin",), clock.now())
        finally:
            await engine.dispose()
        print(
            f"\n  Siaran demo: {public_url}/  (status page)\n"
            f"  staff console: {public_url}/staff  (sign in with the admin token below)\n"
            f"  JSON: {public_url}/api/v2/summary.json   feed: {public_url}/history.atom\n"
            f"  upstream simulator (take services down, stall queues): {sim_url}/\n"
            f"  demo admin token: {secret}\n"
            f"  try: curl -H 'Authorization: Bearer {secret}' -H 'Content-Type: application/json' "
            f'-d \'{{"name":"Loket tutup","body":"Loket e-Meterai tutup sementara.",'
            f'"components":{{"kcu-medan":"partial_outage"}}}}\' {public_url}/api/v1/incidents\n',
            file=sys.stderr,
        )
        await _serve(config, args.host, args.port, extra=[(simulator, sim_port)])

    _run(run())
    return 0


def _token_config(args: argparse.Namespace) -> Config:
    if os.environ.get("SIARAN_DATABASE_URL") and not Path(args.config).exists():
        return Config()  # a database URL alone is enough for token commands
    return _load(args.config)


def cmd_token(args: argparse.Namespace) -> int:
    config = _token_config(args)
    clock = SystemClock()

    async def run() -> int:
        engine = db.make_engine(database_url(config, os.environ))
        try:
            await db.migrate(engine)
            if args.action == "create":
                try:
                    scopes = tokens.parse_scopes(args.scope, (b.id for b in config.branches))
                    info, secret = await tokens.create_token(engine, args.name, scopes, clock.now())
                except ValueError as exc:
                    print(f"siaran token create: {exc}", file=sys.stderr)
                    return 2
                print(
                    f'created token {info.id} "{info.name}" with scope {",".join(scopes)}; '
                    "it is shown once, below on stdout",
                    file=sys.stderr,
                )
                print(secret)
            elif args.action == "list":
                for t in await tokens.list_tokens(engine):
                    state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}Z" if t.revoked_at else "active"
                    used = f"{t.last_used_at:%Y-%m-%d %H:%M}Z" if t.last_used_at else "never"
                    print(f"{t.id}\t{t.name}\t{','.join(t.scopes)}\t{state}\tlast used {used}")
            else:
                try:
                    revoked = await tokens.revoke_token(engine, args.token, clock.now())
                except ValueError as exc:
                    print(f"siaran token revoke: {exc}", file=sys.stderr)
                    return 2
                if not revoked:
                    print(f'no active token "{args.token}"', file=sys.stderr)
                    return 1
                print(f"revoked {', '.join(revoked)}", file=sys.stderr)
            return 0
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_link_code(args: argparse.Namespace) -> int:
    """A one-time code that links a Telegram account to a token (the bot's staff commands)."""
    from status import link_codes
    from status.durations import parse_duration
    from status.errors import DomainError
    from status.model import Actor

    config = _token_config(args)
    clock = SystemClock()
    try:
        ttl = link_codes.check_ttl(parse_duration(args.ttl))
    except (ValueError, DomainError) as exc:
        print(f"siaran token link-code: --ttl: {exc} (from 1m to 24h)", file=sys.stderr)
        return 2

    async def run() -> int:
        engine = db.make_engine(database_url(config, os.environ))
        try:
            await db.migrate(engine)
            live = [t for t in await tokens.list_tokens(engine) if t.revoked_at is None]
            found = [t for t in live if (t.id == args.id if args.id else t.name == args.name)]
            if len(found) != 1:
                what = f'id "{args.id}"' if args.id else f'name "{args.name}"'
                why = "no active token has" if not found else f"{len(found)} tokens share"
                print(f"siaran token link-code: {why} the {what}", file=sys.stderr)
                return 1
            async with db.write(engine) as conn:
                issued = await link_codes.issue(
                    conn, found[0].id, Actor("cli", ("admin",)), clock.now(), ttl
                )
            print(
                f'link code for token {issued.token_id} "{issued.token_name}", single use, '
                f"valid until {issued.expires_at:%Y-%m-%d %H:%M}Z; the staff member sends "
                "/tautkan <code> to the bot. It is shown once, below on stdout",
                file=sys.stderr,
            )
            print(issued.code)
            return 0
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_export(args: argparse.Namespace) -> int:
    """Write the public site to a directory once, or (--watch) after every change until stopped."""
    from status import export
    from status.services import build_services

    config = _load(args.config)
    directory = Path(args.directory)
    clock = SystemClock()

    async def run() -> None:
        engine = db.make_engine(database_url(config, os.environ))
        try:
            await db.migrate(engine)
            snapshot = build_services(config, engine, clock).snapshot
            await snapshot.refresh(force=True)
            done = await asyncio.to_thread(export.export, snapshot.files, directory)
            log.info(
                "exported %d paths to %s: %d files written, %d unchanged, %d removed",
                len(snapshot.files),
                directory,
                done.written,
                done.unchanged,
                done.removed,
            )
            if not args.watch:
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            log.info("watching for changes; SIGINT or SIGTERM stops")
            async with asyncio.TaskGroup() as tasks:
                follower = tasks.create_task(export.follow(snapshot, directory, clock))
                await stop.wait()
                follower.cancel()
        finally:
            await engine.dispose()

    try:
        export.check_directory(directory)  # before any database work: fail fast and clearly
        asyncio.run(run())
    except export.ExportError as exc:
        print(f"siaran export: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    """What was sent where and what failed; `--retry` puts failed ones back in line."""
    config = _token_config(args)
    clock = SystemClock()

    async def run() -> int:
        engine = db.make_engine(database_url(config, os.environ))
        try:
            await db.migrate(engine)
            if args.retry:
                async with db.write(engine) as conn:
                    count = await delivery_log.retry(
                        conn, clock.now(), target=args.target, ids=args.ids
                    )
                print(f"{count} failed deliveries put back in line", file=sys.stderr)
                return 0
            async with db.read(engine) as conn:
                found = await delivery_log.list_deliveries(
                    conn, status=args.status, target=args.target, limit=args.limit
                )
            for d in found:
                when = f"{(d.sent_at or d.created_at):%Y-%m-%d %H:%M:%S}Z"
                note = d.last_error or ""
                if d.target_disabled:
                    note = f"{note} [target stopped: {d.target_disabled}]".strip()
                print(
                    f"{d.id}\t{when}\tevent {d.event_id}\t{d.target}\t{d.status}\t"
                    f"attempts {d.attempts}\t{note}"
                )
            return 0
        finally:
            await engine.dispose()

    if args.retry and not (args.target or args.ids):
        print("siaran deliveries --retry: name --target or ids", file=sys.stderr)
        return 2
    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siaran",
        description="Status service for e-Meterai and the post-office branches that sell it.",
    )
    parser.add_argument("--version", action="version", version=f"siaran {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config",
            default=_default_config(),
            help="TOML config file (default: $SIARAN_CONFIG or ./siaran.toml)",
        )
        return p

    p = with_config(sub.add_parser("init", help="write a commented starter config"))
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_init)

    p = with_config(sub.add_parser("serve", help="run the API, prober and dispatcher"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="serve a built-in demo with a simulated upstream and queues")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--database", default="sqlite:///siaran-demo.db")
    p.set_defaults(func=cmd_demo)

    p = with_config(sub.add_parser("migrate", help="apply database migrations"))
    p.set_defaults(func=cmd_migrate)

    p = with_config(sub.add_parser("check-config", help="validate the config and exit"))
    p.set_defaults(func=cmd_check_config)

    p = with_config(
        sub.add_parser("export", help="write the public site as static files to a directory")
    )
    p.add_argument("directory", metavar="DIR", help="created if missing; other files are kept")
    p.add_argument("--watch", action="store_true", help="rewrite on every change until stopped")
    p.set_defaults(func=cmd_export)

    p = with_config(sub.add_parser("deliveries", help="what was sent where, and what failed"))
    p.add_argument("--status", choices=delivery_log.STATUSES)
    p.add_argument("--target", help='e.g. "telegram:@statusemeterai"')
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--retry", action="store_true", help="put failed deliveries back in line")
    p.add_argument("ids", nargs="*", type=int, help="delivery ids (with --retry)")
    p.set_defaults(func=cmd_deliveries)

    token = sub.add_parser("token", help="staff API tokens")
    token_sub = token.add_subparsers(dest="action", required=True)
    p = with_config(
        token_sub.add_parser("create", help="create a token; prints it alone on stdout")
    )
    p.add_argument("--name", required=True)
    p.add_argument("--scope", required=True, help='"admin" or "branch:<id>[,branch:<id>]"')
    p.set_defaults(func=cmd_token)
    p = with_config(token_sub.add_parser("list", help="list tokens (never their secrets)"))
    p.set_defaults(func=cmd_token)
    p = with_config(token_sub.add_parser("revoke", help="revoke a token by id or name"))
    p.add_argument("token")
    p.set_defaults(func=cmd_token)
    p = with_config(
        token_sub.add_parser(
            "link-code",
            help="a one-time code linking a Telegram account to a token; prints it alone",
        )
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", help="the token's name (unique among active tokens)")
    which.add_argument("--id", help="the token's id")
    p.add_argument("--ttl", default="15m", help="how long the code works (default 15m, up to 24h)")
    p.set_defaults(func=cmd_link_code)
    return parser


class Shutdown(Exception):
    """SIGTERM before the server took over its signals (e.g. during migrations)."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Shutdown


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    # python-telegram-bot 22: RetryAfter.retry_after as a timedelta, without a warning.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    # A supervisor's SIGTERM is a normal stop, so it ends with status 0, not -15.
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"siaran: {exc}", file=sys.stderr)
        return 2
    except Shutdown:
        return 0
    except KeyboardInterrupt:
        return 130
    return code
