"""kinds() = non-underscore modules here; open_all() enters each module's open_targets()."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from broadcasters._base import Broadcaster, Deps, FanOut


@cache
def kinds() -> tuple[str, ...]:
    """Every broadcaster kind: the modules of this package without a leading underscore."""
    here = str(Path(__file__).parent)
    return tuple(sorted(m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_")))


def module(kind: str) -> ModuleType:
    return importlib.import_module(f"broadcasters.{kind}")


def tables() -> tuple[str, ...]:
    """The top-level config keys broadcasters own (config validation accepts exactly these)."""
    return tuple(sorted({module(k).TABLE for k in kinds()}))


@asynccontextmanager
async def open_all(doc: Mapping[str, Any], deps: Deps) -> AsyncIterator[Sequence[Broadcaster]]:
    """Open every kind's targets for the lifetime of the block."""
    async with AsyncExitStack() as stack:
        targets: list[Broadcaster] = []
        for kind in kinds():
            targets.extend(await stack.enter_async_context(module(kind).open_targets(doc, deps)))
        yield targets


@asynccontextmanager
async def open_fanouts(doc: Mapping[str, Any], deps: Deps) -> AsyncIterator[Sequence[FanOut]]:
    """Open every kind's fan-outs (many recipients found at plan time), if it has any."""
    async with AsyncExitStack() as stack:
        found: list[FanOut] = []
        for kind in kinds():
            opener = getattr(module(kind), "open_fanouts", None)
            if opener is not None:
                found.extend(await stack.enter_async_context(opener(doc, deps)))
        yield found
