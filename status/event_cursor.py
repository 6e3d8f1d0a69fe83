"""EventCursor: which events a reader has seen, when event ids commit out of order.

PostgreSQL hands out an event's id when the row is inserted, so a transaction holding id 11
can commit after one holding id 12. A reader that remembers only the highest id it has seen
would never see 11. The cursor keeps a floor (every id at or below it is seen or given up on)
and the ids seen above it; the reader asks for every id above the floor. An id missing below
a seen one is waited for PATIENCE (far longer than any write transaction), then taken to
belong to a rolled-back write, which is how a sequence leaves a permanent gap.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

PATIENCE = timedelta(minutes=2)


class EventCursor:
    def __init__(self, floor: int = 0) -> None:
        self.floor = floor
        self._seen: set[int] = set()  # ids above the floor already seen
        self._missing_since: dict[int, datetime] = {}  # ids above the floor not yet committed

    def unseen(self, ids: Iterable[int]) -> list[int]:
        """Of `ids` (read as "every id above the floor"), those not seen before."""
        return [i for i in ids if i > self.floor and i not in self._seen]

    def covers(self, event_id: int) -> bool:
        return event_id <= self.floor or event_id in self._seen

    def see(self, ids: Iterable[int], now: datetime) -> None:
        """Remember `ids` as seen and move the floor up as far as no id can still arrive."""
        for event_id in ids:
            if event_id > self.floor:
                self._seen.add(event_id)
                self._missing_since.pop(event_id, None)
        self.advance(now)

    @property
    def waiting_for(self) -> list[int]:
        """Ids below a seen one that have not committed (yet): the reader keeps asking."""
        return sorted(self._missing_since)

    def advance(self, now: datetime) -> None:
        top = max(self._seen, default=self.floor)
        for missing in range(self.floor + 1, top):
            if missing not in self._seen:
                self._missing_since.setdefault(missing, now)
        while self.floor < top:
            following = self.floor + 1
            if following in self._seen:
                self._seen.discard(following)
            elif now - self._missing_since[following] >= PATIENCE:
                del self._missing_since[following]
            else:
                break
            self.floor = following
