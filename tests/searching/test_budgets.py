import pytest

from hwqnn.errors import BudgetError
from hwqnn.searching.budgets import Budget, format_cost, parse_budget, parse_budgets, resolve_budgets


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
        ("latency=1e999ms", "finite"),
        ("size=1e308GB", "finite"),
        ("latency=1e-400s", "must be positive"),
        ("latency=nanms", "not understood"),
        ("latency=infms", "not understood"),
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


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0.0, -1.0, True, "1"])
def test_budget_values_must_be_finite_positive_numbers(value):
    with pytest.raises(BudgetError, match="finite number > 0"):
        Budget("latency", value)


@pytest.mark.parametrize("key, value, text", [
    ("size_bytes", 512, "512 B"),
    ("size_bytes", 5000, "4.883 KiB"),
    ("peak_memory_bytes", 3 * 1024**2, "3 MiB"),
    ("size_bytes", 3e9, "2.794 GiB"),
    ("size_bytes", 1e14, "93130 GiB"),
    ("latency_s", 5.13e-5, "0.0513 ms"),
    ("latency_s", 1.234e-9, "0.000001234 ms"),
    ("latency_s", 123.4, "123400 ms"),
    ("energy_j", 2e-7, "0.0002 mJ"),
    ("energy_j", float("nan"), "n/a"),
    ("latency_s", float("inf"), "n/a"),
])
def test_format_cost_never_uses_scientific_notation(key, value, text):
    assert format_cost(key, value) == text


def test_budget_str_has_no_scientific_notation():
    assert str(parse_budget("size=1e12B")) == "size=931.323GiB"
    assert str(parse_budget("latency=1e-9s")) == "latency=0.000001ms"
    assert str(parse_budget("latency=0.00001x")) == "latency=0.00001x"
