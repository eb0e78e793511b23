"""Trade sequencing: each trade released once, in trade-id order, whatever the interleaving."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cryptopipeline.ingestor._sequencer import Gap, TradeSequencer


def _feed(sequencer: TradeSequencer[int], ids: list[int]) -> tuple[list[int], int]:
    released: list[int] = []
    duplicates = 0
    for trade_id in ids:
        offer = sequencer.offer(trade_id, trade_id)
        duplicates += offer.duplicate
        released.extend(offer.ready)
    return released, duplicates


def test_in_order_trades_pass_straight_through() -> None:
    assert _feed(TradeSequencer(), [5, 6, 7]) == ([5, 6, 7], 0)


def test_duplicates_are_dropped_and_counted() -> None:
    assert _feed(TradeSequencer(), [5, 6, 6, 5, 7, 7]) == ([5, 6, 7], 3)


def test_a_gap_holds_later_trades_until_it_fills() -> None:
    sequencer: TradeSequencer[int] = TradeSequencer(next_id=10)
    assert _feed(sequencer, [10, 13, 14]) == ([10], 0)
    assert sequencer.gap() == Gap(11, 12)
    assert sequencer.pending == 2
    assert _feed(sequencer, [12, 11]) == ([11, 12, 13, 14], 0)
    assert sequencer.gap() is None


def test_a_heartbeat_reveals_trades_never_seen() -> None:
    sequencer: TradeSequencer[int] = TradeSequencer(next_id=10)
    assert sequencer.gap_to(9) is None
    assert sequencer.gap_to(12) == Gap(10, 12)
    _feed(sequencer, [11])
    assert sequencer.gap_to(12) == Gap(10, 10)  # up to the first waiting trade only


def test_giving_up_a_gap_releases_what_waited() -> None:
    sequencer: TradeSequencer[int] = TradeSequencer(next_id=1, max_pending=2)
    _feed(sequencer, [3, 4])
    assert sequencer.overflowing
    gap = sequencer.gap()
    assert gap == Gap(1, 2)
    assert sequencer.give_up(gap) == [3, 4]
    assert sequencer.next_id == 5
    assert sequencer.give_up(Gap(1, 2)) == []  # a stale gap changes nothing


def test_recovered_position_drops_everything_already_published() -> None:
    sequencer: TradeSequencer[int] = TradeSequencer(next_id=101)
    assert _feed(sequencer, [99, 100, 101]) == ([101], 2)


@st.composite
def two_connections(draw: st.DrawFn) -> tuple[int, list[int], list[int], list[int]]:
    """A complete stream, a lossy duplicating one, and one interleaving of both."""
    n = draw(st.integers(min_value=1, max_value=200))
    start = draw(st.integers(min_value=0, max_value=10**12))
    full = list(range(start, start + n))
    complete = [t for t in full for _ in range(draw(st.integers(1, 2)))]
    lossy = [t for t in full if draw(st.booleans())]
    lossy = [t for t in lossy for _ in range(draw(st.integers(1, 3)))]
    merged: list[int] = []
    a, b = list(complete), list(lossy)
    while a or b:
        take_a = bool(a) and (not b or draw(st.booleans()))
        merged.append((a if take_a else b).pop(0))
    return start, full, lossy, merged


@given(two_connections())
def test_any_interleaving_of_two_connections_yields_each_trade_once(
    case: tuple[int, list[int], list[int], list[int]],
) -> None:
    start, full, _, merged = case
    released, _ = _feed(TradeSequencer(next_id=start), merged)
    assert released == full


@given(two_connections(), st.data())
def test_lossy_streams_plus_backfill_yield_each_trade_once(
    case: tuple[int, list[int], list[int], list[int]], data: st.DataObject
) -> None:
    start, full, lossy, _ = case
    sequencer: TradeSequencer[int] = TradeSequencer(next_id=start)
    released, _ = _feed(sequencer, lossy)
    assert released == sorted(set(released))  # in order, no duplicates, even with gaps
    # backfill every gap, in whatever order REST pages arrive, until none is left
    while (gap := sequencer.gap_to(full[-1])) is not None:
        missing = list(range(gap.first, gap.last + 1))
        released += _feed(sequencer, data.draw(st.permutations(missing)))[0]
    assert released == full
