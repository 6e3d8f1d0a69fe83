"""tomllib → frozen dataclasses; parse_table() shared with broadcasters; ConfigError names key path + example.

Every problem is reported as `<file>: <key path>: <what is wrong>`, for example
`siaran.toml: check[2].interval: expected a duration like "30s", "20m" or "1h30m", got "30"`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from status.durations import parse_duration
from status.hours import Hours, parse_hours

T = TypeVar("T")
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
LANGUAGES = ("id", "en")
QUEUE_FIELDS = ("serving", "issued", "counters_open")
CHECK_SEVERITIES = ("degraded_performance", "partial_outage", "major_outage")


class ConfigError(Exception):
    """The configuration is unusable; the message names the file, the key path and the problem."""

    def __init__(self, path: str, problem: str, *, file: str | None = None) -> None:
        self.key_path, self.problem, self.file = path, problem, file
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return (
            f"{where}{self.key_path}: {self.problem}" if self.key_path else f"{where}{self.problem}"
        )

    def in_file(self, file: str) -> ConfigError:
        return ConfigError(self.key_path, self.problem, file=file)


def _describe(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _convert(hint: Any, value: object, path: str) -> Any:
    """Convert a TOML value to the annotated type or raise ConfigError(path)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(options[0], value, path)
    if hint is timedelta:
        if not isinstance(value, str):
            raise ConfigError(path, f'expected a duration like "30s", got {_describe(value)}')
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(path, str(exc)) from None
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected a whole number, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, f"expected a number, got {_describe(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {_describe(value)}")
        return value
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {_describe(value)}")
        return tuple(_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a table, got {_describe(value)}")
        _, item = typing.get_args(hint) or (str, str)
        return {str(k): _convert(item, v, f"{path}.{k}") for k, v in value.items()}
    raise TypeError(f"parse_table cannot convert to {hint!r}")  # a programming error, not input


def parse_table(cls: type[T], raw: object, *, path: str) -> T:
    """Build dataclass `cls` from one TOML table: unknown keys, missing keys and wrong types raise."""
    if not isinstance(raw, Mapping):
        raise ConfigError(path, f"expected a table, got {_describe(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # cls is a dataclass
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"{path}.{unknown[0]}", f"unknown key; allowed keys are {', '.join(fields)}"
        )
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name in raw:
            values[name] = _convert(hints[name], raw[name], f"{path}.{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{path}.{name}", "required key is missing")
    return cls(**values)


def parse_tables(cls: type[T], raw: object, *, path: str) -> list[T]:
    """An array of tables (`[[path]]`); absent = empty."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(path, f"expected an array of tables ([[{path}]]), got {_describe(raw)}")
    return [parse_table(cls, item, path=f"{path}[{i}]") for i, item in enumerate(raw)]


@dataclass(frozen=True, slots=True)
class Site:
    name: str = "Status e-Meterai"
    public_url: str = "http://127.0.0.1:8080"
    language: str = "id"
    timezone: str = "Asia/Jakarta"
    # Shown on the page and in the bot; optional.
    description: str = ""


@dataclass(frozen=True, slots=True)
class Storage:
    url: str = "sqlite:///siaran.db"


@dataclass(frozen=True, slots=True)
class ComponentConfig:
    id: str
    name: str
    group: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class CheckConfig:
    id: str
    component: str
    url: str
    type: str = "http"
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    interval: timedelta = timedelta(seconds=30)
    timeout: timedelta = timedelta(seconds=5)
    conditions: tuple[str, ...] = ("status == 200",)
    fail_after: int = 3
    recover_after: int = 2
    severity: str = "major_outage"


@dataclass(frozen=True, slots=True)
class BranchConfig:
    id: str
    name: str
    region: str
    timezone: str = "Asia/Jakarta"
    hours: str = ""
    queue_url: str = ""
    stall_after: timedelta = timedelta(minutes=20)
    queue_fields: dict[str, str] = field(default_factory=dict)
    queue_interval: timedelta = timedelta(seconds=30)
    queue_timeout: timedelta = timedelta(seconds=5)
    # Upstream components whose outage explains this branch's trouble; empty = every
    # [[component]] (a branch sells every e-Meterai service).
    depends_on: tuple[str, ...] = ()
    description: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def opening_hours(self) -> Hours:
        return parse_hours(self.hours)


@dataclass(frozen=True, slots=True)
class ProberConfig:
    # An automatic incident resolves after its checks have been healthy this long.
    resolve_after: timedelta = timedelta(minutes=5)
    # Raw results are kept this long; daily aggregates are kept for good.
    results_retention: timedelta = timedelta(days=7)
    # A check's lease: another instance takes over a dead one's checks after this.
    lease: timedelta = timedelta(seconds=15)
    # Checks in flight at once, per instance.
    concurrency: int = 500


CORE_TABLES = ("site", "storage", "component", "check", "branch", "prober")


@dataclass(frozen=True, slots=True)
class Config:
    site: Site = Site()
    storage: Storage = Storage()
    components: tuple[ComponentConfig, ...] = ()
    checks: tuple[CheckConfig, ...] = ()
    branches: tuple[BranchConfig, ...] = ()
    prober: ProberConfig = ProberConfig()
    # The whole document, for broadcasters: each parses its own table (see broadcasters/_base.py).
    document: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"

    def component_ids(self) -> set[str]:
        return {c.id for c in self.components} | {b.id for b in self.branches}

    def branch(self, branch_id: str) -> BranchConfig | None:
        return next((b for b in self.branches if b.id == branch_id), None)

    def upstream_of(self, branch: BranchConfig) -> tuple[str, ...]:
        return branch.depends_on or tuple(c.id for c in self.components)


def _check_url(path: str, url: str, *, schemes: Iterable[str] = ("http", "https")) -> None:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(
            path, f'expected an {"/".join(schemes)} URL like "https://host/path", got "{url}"'
        )


def _check_zone(path: str, name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            path,
            f'unknown time zone "{name}"; e.g. "Asia/Jakarta" (WIB), '
            f'"Asia/Makassar" (WITA), "Asia/Jayapura" (WIT)',
        ) from None


def _check_slug(path: str, value: str) -> None:
    if not SLUG.match(value):
        raise ConfigError(
            path, f'expected a lowercase id like "kcu-medan" (a-z, 0-9, -), got "{value}"'
        )


def parse_config(doc: Mapping[str, Any], *, extra_tables: Iterable[str] = ()) -> Config:
    """Validate a parsed TOML document. `extra_tables` are top-level keys owned by broadcasters."""
    allowed = set(CORE_TABLES) | set(extra_tables)
    for key in doc:
        if key not in allowed:
            raise ConfigError(key, f"unknown top-level key; allowed: {', '.join(sorted(allowed))}")
    site = parse_table(Site, doc.get("site", {}), path="site")
    if site.language not in LANGUAGES:
        raise ConfigError("site.language", f'expected "id" or "en", got "{site.language}"')
    _check_zone("site.timezone", site.timezone)
    _check_url("site.public_url", site.public_url)
    storage = parse_table(Storage, doc.get("storage", {}), path="storage")
    if urlsplit(storage.url).scheme.split("+")[0] not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(
            "storage.url",
            f'expected "sqlite:///file.db" or "postgresql://user@host/db", got "{storage.url}"',
        )
    components = parse_tables(ComponentConfig, doc.get("component"), path="component")
    branches = parse_tables(BranchConfig, doc.get("branch"), path="branch")
    checks = parse_tables(CheckConfig, doc.get("check"), path="check")

    seen: dict[str, str] = {}
    labelled = [("component", i, c.id) for i, c in enumerate(components)]
    labelled += [("branch", i, b.id) for i, b in enumerate(branches)]
    for kind, i, item_id in labelled:
        path = f"{kind}[{i}].id"
        _check_slug(path, item_id)
        if item_id in seen:
            raise ConfigError(path, f'"{item_id}" is already used by {seen[item_id]}')
        seen[item_id] = f"{kind}[{i}]"
    for i, branch in enumerate(branches):
        _check_zone(f"branch[{i}].timezone", branch.timezone)
        try:
            parse_hours(branch.hours)
        except ValueError as exc:
            raise ConfigError(f"branch[{i}].hours", str(exc)) from None
        if branch.queue_url:
            _check_url(f"branch[{i}].queue_url", branch.queue_url)
        for key in branch.queue_fields:
            if key not in QUEUE_FIELDS:
                raise ConfigError(
                    f"branch[{i}].queue_fields.{key}",
                    f"unknown queue field; expected one of {', '.join(QUEUE_FIELDS)}",
                )
        for name in ("stall_after", "queue_interval", "queue_timeout"):
            if getattr(branch, name) <= timedelta(0):
                raise ConfigError(f"branch[{i}].{name}", "must be longer than 0s")
        upstream = {c.id for c in components}
        for j, dep in enumerate(branch.depends_on):
            if dep not in upstream:
                raise ConfigError(
                    f"branch[{i}].depends_on[{j}]",
                    f'unknown upstream component "{dep}"; list [[component]] ids',
                )
    check_ids: set[str] = set()
    for i, check in enumerate(checks):
        _check_slug(f"check[{i}].id", check.id)
        if check.id in check_ids:
            raise ConfigError(f"check[{i}].id", f'"{check.id}" is already used by another check')
        check_ids.add(check.id)
        if check.component not in seen:
            raise ConfigError(
                f"check[{i}].component",
                f'unknown component "{check.component}"; define it in [[component]] or [[branch]]',
            )
        _check_url(f"check[{i}].url", check.url)
        if check.type != "http":
            raise ConfigError(f"check[{i}].type", f'expected "http", got "{check.type}"')
        if check.severity not in CHECK_SEVERITIES:
            raise ConfigError(
                f"check[{i}].severity", f"expected one of {', '.join(CHECK_SEVERITIES)}"
            )
        for name, value in (("interval", check.interval), ("timeout", check.timeout)):
            if value <= timedelta(0):
                raise ConfigError(f"check[{i}].{name}", "must be longer than 0s")
        for name, count in (
            ("fail_after", check.fail_after),
            ("recover_after", check.recover_after),
        ):
            if count < 1:
                raise ConfigError(f"check[{i}].{name}", f"must be at least 1, got {count}")
        # Imported here: the checks package imports this module for CheckConfig.
        from status.checks.conditions import parse_condition

        for j, condition in enumerate(check.conditions):
            try:
                parse_condition(condition)
            except ValueError as exc:
                raise ConfigError(f"check[{i}].conditions[{j}]", str(exc)) from None
    prober = parse_table(ProberConfig, doc.get("prober", {}), path="prober")
    return Config(site, storage, tuple(components), tuple(checks), tuple(branches), prober, doc)


def load_config(path: str | os.PathLike[str], *, extra_tables: Iterable[str] = ()) -> Config:
    """Read and validate one TOML file; every error names the file."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config: {exc.strerror}", file=name) from None
    return load_config_text(text, name, extra_tables=extra_tables)


def load_config_text(text: str, name: str, *, extra_tables: Iterable[str] = ()) -> Config:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"not valid TOML: {exc}", file=name) from None
    try:
        config = parse_config(doc, extra_tables=extra_tables)
    except ConfigError as exc:
        raise exc.in_file(name) from None
    return dataclasses.replace(config, source=name)


def database_url(config: Config, environ: Mapping[str, str]) -> str:
    """SIARAN_DATABASE_URL wins over storage.url (PRODUCT.md)."""
    return environ.get("SIARAN_DATABASE_URL") or config.storage.url
