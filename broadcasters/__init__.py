"""Broadcasters: one module per kind of target; this package's public surface."""

from broadcasters._base import Broadcaster, DeliveryError, Deps, FanOut, Message, Receipt
from broadcasters._registry import kinds, open_all, open_fanouts, tables

__all__ = [
    "Broadcaster",
    "DeliveryError",
    "Deps",
    "FanOut",
    "Message",
    "Receipt",
    "kinds",
    "open_all",
    "open_fanouts",
    "tables",
]
