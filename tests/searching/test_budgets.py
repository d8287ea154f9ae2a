import pytest

from hwqnn.errors import BudgetError
from hwqnn.searching.budgets import Budget, parse_budget, parse_budgets, resolve_budgets


@pytest.mark.parametrize(
    "text, metric, value, relative",
    [
        ("latency=2ms", "latency", 2e-3, False),
        ("latency=0.6x", "latency", 0.6, True),
        ("size=1MB", "size", 1e6, False),
        ("size=512KiB", "size", 512 * 1024, False),
        ("energy=5mJ", "energy", 5e-3, False),
        ("memory = 2 MiB", "memory", 2 * 1024**2, False),
        ("latency=1e-3s", "latency", 1e-3, False),
        ("LATENCY=250us", "latency", 250e-6, False),
    ],
)
def test_parse_budget(text, metric, value, relative):
    b = parse_budget(text)
    assert b.metric == metric and b.relative == relative
    assert b.value == pytest.approx(value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("latency", "not understood"),
        ("speed=2ms", "unknown metric"),
        ("latency=2", "no unit"),
        ("latency=2MB", "not a latency unit"),
        ("size=0x", "must be positive"),
        ("size=-1MB", "not understood"),
    ],
)
def test_bad_budgets_get_clear_errors(text, fragment):
    with pytest.raises(BudgetError, match=fragment):
        parse_budget(text)


def test_duplicate_metric_is_an_error():
    with pytest.raises(BudgetError, match="more than once"):
        parse_budgets(["size=1MB", "size=0.5x"])


def test_relative_budgets_resolve_against_reference_lazily():
    calls = []

    def reference():
        calls.append(1)
        return {"latency_s": 0.01, "size_bytes": 1000.0}

    absolute = resolve_budgets([parse_budget("size=2kB")], reference)
    assert absolute == {"size_bytes": 2000.0} and not calls
    mixed = resolve_budgets([parse_budget("latency=0.5x"), parse_budget("size=0.25x")], reference)
    assert mixed == {"latency_s": pytest.approx(0.005), "size_bytes": pytest.approx(250.0)}
    assert len(calls) == 1


def test_budget_str_round_trips():
    for text in ("latency=0.6x", "size=512KiB", "latency=2ms"):
        b = parse_budget(text)
        assert parse_budget(str(b)).value == pytest.approx(b.value)
    assert isinstance(parse_budget(Budget("size", 1.0, True)), Budget)
