"""EventCursor: a reader of the event log neither misses an id that commits late nor waits
for ever on one that never will."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from status.event_cursor import PATIENCE, EventCursor

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def test_ids_in_order_move_the_floor_and_are_not_seen_twice() -> None:
    cursor = EventCursor(10)
    assert cursor.unseen([11, 12]) == [11, 12]
    cursor.see([11, 12], T0)
    assert cursor.floor == 12
    assert cursor.unseen([12, 13]) == [13]
    assert cursor.covers(12)
    assert not cursor.covers(13)


def test_a_late_id_is_asked_for_until_it_arrives() -> None:
    cursor = EventCursor(10)
    cursor.see([12], T0)  # 11 was taken first but has not committed
    assert cursor.floor == 10
    assert cursor.waiting_for == [11]
    assert not cursor.covers(11)
    assert cursor.covers(12)
    assert cursor.unseen([11, 12]) == [11]  # it committed: news, though older than 12
    cursor.see([11], T0 + timedelta(seconds=1))
    assert cursor.floor == 12
    assert cursor.waiting_for == []


def test_an_id_that_never_commits_is_given_up_after_the_patience() -> None:
    cursor = EventCursor(10)
    cursor.see([12, 13], T0)
    cursor.advance(T0 + PATIENCE - timedelta(seconds=1))
    assert cursor.floor == 10
    cursor.advance(T0 + PATIENCE)
    assert cursor.floor == 13
    assert cursor.waiting_for == []
    assert cursor.covers(11)  # a rolled-back write: nothing to show


def test_ids_at_or_below_the_floor_are_old_news() -> None:
    cursor = EventCursor(10)
    assert cursor.unseen([9, 10]) == []
    cursor.see([9, 10], T0)
    assert cursor.floor == 10
    assert cursor.waiting_for == []
