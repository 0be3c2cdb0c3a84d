"""DeltaLog and MaxLog against naive list models: random inserts (in order and late),
take-backs, retention and reads at random instants; and what a late insert costs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opcount import bytecodes

from callfloor.processors import deltalog
from callfloor.processors.deltalog import DeltaLog, MaxLog

WIDTH = 3
TIMES = st.sampled_from([0.0, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 8.0, 13.0, 21.0])

# An operation: ("add", time, field, value), ("remove", pick), ("forget", time),
# ("shift", step): later adds move forward by step (so most records come in order).
ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("add"), TIMES, st.integers(0, WIDTH - 1), st.integers(-3, 9)),
        st.tuples(st.just("add"), TIMES, st.integers(0, WIDTH - 1), st.integers(-3, 9)),
        st.tuples(st.just("remove"), st.integers(0, 1000)),
        st.tuples(st.just("forget"), TIMES),
        st.tuples(st.just("shift"), st.sampled_from([0.0, 1.0, 4.0, 30.0])),
    ),
    max_size=120,
)
QUERIES = st.lists(st.tuples(TIMES, TIMES, st.booleans()), min_size=1, max_size=6)


def _naive_prefix(records: list[tuple[float, list[int]]], t: float, inclusive: bool) -> list[int]:
    out = [0] * WIDTH
    for x, vec in records:
        if x < t or (inclusive and x == t):
            for f in range(WIDTH):
                out[f] += vec[f]
    return out


def _run(
    ops: list[Any], block: int
) -> tuple[DeltaLog, list[tuple[float, list[int]]], float, float]:
    """Apply ``ops`` to a log and the naive list; the log, the list, the shift and the
    retention instant."""
    log = DeltaLog(WIDTH, block)
    records: list[tuple[float, list[int]]] = []
    shift = 0.0
    kept_from = float("-inf")
    for op in ops:
        if op[0] == "add":
            _, t, f, v = op
            x = shift + t
            vec = [0] * WIDTH
            vec[f] = v
            log.add(x, ((f, v), (WIDTH - 1 - f, 1)))
            vec[WIDTH - 1 - f] += 1
            records.append((x, vec))
        elif op[0] == "remove" and records:
            x, vec = records.pop(op[1] % len(records))
            log.remove(x, [(f, vec[f]) for f in range(WIDTH) if vec[f]])
        elif op[0] == "forget":
            kept_from = max(kept_from, shift + op[1] - 10.0)
            log.forget(kept_from)
        elif op[0] == "shift":
            shift += op[1]
    return log, records, shift, kept_from


@settings(max_examples=400, deadline=None)
@given(ops_strategy, QUERIES, st.sampled_from([1, 2, 3, 128]))
def test_delta_log_equals_the_naive_list(
    ops: list[Any], queries: list[tuple[float, float, bool]], block: int
) -> None:
    """Prefix sums, window sums and the total equal sums over a plain list of records
    after any mix of in-order and late adds, take-backs and retention, at any instant
    from the retention instant on."""
    log, records, shift, kept_from = _run(ops, block)
    assert log.total() == _naive_prefix(records, float("inf"), True)
    for a, b, closed in queries:
        ta = max(shift + a - 20.0, kept_from)
        tb = max(shift + b - 20.0, kept_from)
        for t in (ta, tb):
            assert log.prefix(t) == _naive_prefix(records, t, True)
            assert log.prefix(t, inclusive=False) == _naive_prefix(records, t, False)
        lo, hi = min(ta, tb), max(ta, tb)
        expected = [
            h - low
            for h, low in zip(
                _naive_prefix(records, hi, True),
                _naive_prefix(records, lo, not closed),
                strict=True,
            )
        ]
        assert log.between(lo, hi, closed) == expected


@settings(max_examples=200, deadline=None)
@given(ops_strategy, QUERIES, st.sampled_from([1, 2, 5]))
def test_delta_log_dump_and_load_keep_every_read(
    ops: list[Any], queries: list[tuple[float, float, bool]], block: int
) -> None:
    """A log rebuilt from its dump form (times and cumulative vectors) reads like the
    original at every instant, and goes on taking records exactly like it."""
    log, records, shift, kept_from = _run(ops, block)
    times, cums, base = log.dump()
    assert list(times) == sorted(times)
    again = DeltaLog.load(WIDTH, times, cums, base, block)
    again.forget(kept_from)
    for a, _, _ in queries:
        t = max(shift + a - 20.0, kept_from)
        assert again.prefix(t) == log.prefix(t) == _naive_prefix(records, t, True)
    for copy in (log, again):
        copy.add(shift - 5.0, ((0, 7),))
        copy.add(shift + 50.0, ((1, 1),))
    assert again.total() == log.total()
    t = max(shift, kept_from)
    assert again.prefix(t) == log.prefix(t)


maxops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("add"), TIMES, st.integers(0, 50)),
        st.tuples(st.just("add"), TIMES, st.integers(0, 50)),
        st.tuples(st.just("remove"), st.integers(0, 1000)),
        st.tuples(st.just("forget"), TIMES),
        st.tuples(st.just("shift"), st.sampled_from([0.0, 1.0, 4.0, 30.0])),
    ),
    max_size=120,
)


@settings(max_examples=400, deadline=None)
@given(maxops_strategy, QUERIES, st.sampled_from([1, 2, 3, 128]))
def test_max_log_equals_the_naive_list(
    ops: list[Any], queries: list[tuple[float, float, bool]], block: int
) -> None:
    """The maximum over any (a, b] or [a, b] equals the maximum over a plain list of
    entries after in-order and late adds, exact take-backs and retention."""
    log = MaxLog(-1, block)
    entries: list[tuple[float, int]] = []
    shift = 0.0
    kept_from = float("-inf")
    for op in ops:
        if op[0] == "add":
            x = shift + op[1]
            log.add(x, op[2])
            if x >= kept_from:
                entries.append((x, op[2]))
        elif op[0] == "remove" and entries:
            x, v = entries.pop(op[1] % len(entries))
            assert log.remove(x, v)
        elif op[0] == "forget":
            kept_from = max(kept_from, shift + op[1] - 10.0)
            log.forget(kept_from)
            entries = [(x, v) for x, v in entries if x >= kept_from]
        elif op[0] == "shift":
            shift += op[1]
    assert not log.remove(-1e9, 0)
    for a, b, closed in queries:
        lo = max(shift + min(a, b) - 20.0, kept_from)
        hi = max(shift + max(a, b) - 20.0, kept_from)
        inside = [v for x, v in entries if (lo <= x if closed else lo < x) and x <= hi]
        assert log.maximum(lo, hi, closed) == max(inside, default=-1)
    again = MaxLog.load(*log.dump(), -1, block)
    assert again.maximum(kept_from, float("inf"), closed=True) == max(
        (v for _, v in entries), default=-1
    )


# ----------------------------------------------------------------------------- cost


def _bytecodes(work: Callable[[], object]) -> int:
    """Bytecode instructions ``work`` executes in the delta log's own code."""
    return bytecodes(work, [deltalog.__file__])


def _late_insert_cost(records: int) -> int:
    """Bytecodes of 50 late records (each at the start of the log) and a read after
    them, in a log of ``records`` in-order records."""
    log = DeltaLog(11)
    for i in range(records):
        log.add(float(i), ((0, 1), (9, i)))

    def late() -> None:
        for k in range(50):
            log.add(0.5 + k / 100, ((0, 1), (5, 1)))

    return _bytecodes(late)


def test_a_late_insert_costs_the_same_however_many_records_follow_it() -> None:
    """50 records inserted at the start of a log of 40,000 records execute at most
    1.5 times the instructions they execute in a log of 2,000 (shifting every later
    record, as before, costs 20 times as much)."""
    small = _late_insert_cost(2_000)
    large = _late_insert_cost(40_000)
    assert large <= 1.5 * small, (small, large)


def test_a_read_after_a_late_insert_passes_only_the_blocks_on_its_nearer_side() -> None:
    """After a record inserted at the start of a long log, a read near the end passes
    only the few blocks after it, and a read anywhere at most half of the blocks."""
    log = DeltaLog(11)
    for i in range(20_000):
        log.add(float(i), ((0, 1),))
    plain_end = _bytecodes(lambda: log.prefix(19_990.5))
    plain_mid = _bytecodes(lambda: log.prefix(12_000.5))
    log.add(0.5, ((0, 1),))
    step = 200  # one 11-wide vector sum
    assert _bytecodes(lambda: log.prefix(19_990.5)) <= plain_end + 2 * step
    assert _bytecodes(lambda: log.prefix(12_000.5)) <= plain_mid + step * (log.blocks // 2 + 1)
    assert log.prefix(19_990.5)[0] == 19_992
    assert log.prefix(12_000.5)[0] == 12_002
