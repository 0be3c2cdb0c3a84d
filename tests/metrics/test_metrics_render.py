"""The fast text renderer: the same bytes as prometheus_client.generate_latest."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from callfloor.metrics.catalogue import Family, Group, MetricType, Unit
from callfloor.metrics.render import (
    MetricFamily,
    TextFamily,
    escape,
    format_value,
    header,
    label_set,
)


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


# prometheus_client's own formatting, typed (the library leaves it untyped).
_go_float: Callable[[float], str] = floatToGoString

_values = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
)
_label_values = st.text(max_size=12)
_types = st.sampled_from([MetricType.GAUGE, MetricType.COUNTER])


@given(_values)
def test_values_are_formatted_as_generate_latest_formats_them(value: float) -> None:
    """format_value writes any number as floatToGoString does (zero without its sign)."""
    assert format_value(value) == _go_float(value + 0.0)


@given(
    _types,
    st.text(min_size=0, max_size=30),
    st.lists(st.tuples(_label_values, _label_values, _values), max_size=8),
)
def test_text_family_is_byte_identical_to_generate_latest(
    kind: MetricType, help_text: str, rows: list[tuple[str, str, float]]
) -> None:
    """A TextFamily's lines equal generate_latest over the MetricFamily fed the same samples."""
    name = "callfloor_x_total" if kind is MetricType.COUNTER else "callfloor_x"
    family = Family(name, kind, help_text or "h", ("b", "a"), Unit.NONE, Group.PROCESSOR)
    text, metric = TextFamily(family), MetricFamily(family)
    for a, b, v in rows:
        labels = label_set(b=b, a=a)
        text.add(name, labels, v)
        metric.add(name, labels, v)
    assert "".join(text.lines).encode() == generate_latest(_Fixed([metric.metric]))


def test_label_values_are_escaped() -> None:
    """Backslash, newline and double quote are escaped; label names come out sorted."""
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    text, names, values = label_set(z="1", a='x"y')
    assert text == '{a="x\\"y",z="1"}'
    assert names == ("a", "z") and values == ('x"y', "1")


def test_header_escapes_help_text() -> None:
    """HELP text escapes backslashes and newlines as generate_latest does."""
    family = Family("callfloor_x", MetricType.GAUGE, "a\\b", (), Unit.NONE, Group.PROCESSOR)
    assert header(family) == "# HELP callfloor_x a\\\\b\n# TYPE callfloor_x gauge\n"


def test_counter_metric_is_named_without_total() -> None:
    """A counter's prometheus_client Metric drops _total (generate_latest adds it back)."""
    family = Family("callfloor_x_total", MetricType.COUNTER, "h", (), Unit.NONE, Group.PROCESSOR)
    assert MetricFamily(family).metric.name == "callfloor_x"
    assert header(family).startswith("# HELP callfloor_x_total h\n")
