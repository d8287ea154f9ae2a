import pytest

from cost_models.units import UnitError, parse_quantity


@pytest.mark.parametrize("text, dimension, expected", [
    ("20 TOPS", "throughput", 20e12), ("472 GFLOPS", "throughput", 472e9), ("1 TMAC/s", "throughput", 2e12),
    ("25.6 GB/s", "bandwidth", 25.6e9), ("5 Gbit/s", "bandwidth", 5e9 / 8), ("1 GiB/s", "bandwidth", 2**30),
    ("8 MiB", "size", 8 * 2**20), ("4 GB", "size", 4e9), ("0.2 pJ", "energy", 0.2e-12),
    ("20 pJ/B", "energy_per_byte", 20e-12), ("1 pJ/bit", "energy_per_byte", 8e-12), ("20 us", "time", 20e-6),
    ("1.5 ms", "time", 1.5e-3), (0.5, "dimensionless", 0.5), ("1e3 OPS", "throughput", 1e3),
])
def test_units_parse_to_si(text, dimension, expected):
    assert parse_quantity(text, dimension) == pytest.approx(expected)


@pytest.mark.parametrize("text, dimension", [
    ("20 parsecs", "throughput"), ("25 TOPS", "bandwidth"), ("fast", "time"), ("8 MiB", "energy"), (True, "size"),
])
def test_bad_units_are_rejected(text, dimension):
    with pytest.raises(UnitError):
        parse_quantity(text, dimension)
