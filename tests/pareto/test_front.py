"""Non-dominated sets and hypervolume against hand-computed cases, with ties and duplicates (2-D and 3-D)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwqnn.pareto import dominates, hypervolume, non_dominated_mask, non_dominated_ranks, to_minimize


def test_2d_front_and_hypervolume_by_hand():
    points = [(1, 3), (2, 2), (3, 1), (2, 3), (3, 3)]
    assert non_dominated_mask(points).tolist() == [True, True, True, False, False]
    # Staircase under (4, 4): 3x1 + 2x1 + 1x1.
    assert hypervolume(points, (4, 4)) == pytest.approx(6.0)


def test_2d_duplicates_are_all_on_the_front_and_counted_once():
    points = [(1, 2), (1, 2), (2, 1)]
    assert non_dominated_mask(points).tolist() == [True, True, True]
    assert hypervolume(points, (3, 3)) == pytest.approx(2 * 1 + 1 * 1)
    assert hypervolume(points, (3, 3)) == hypervolume(points[1:], (3, 3))


def test_2d_ties_are_decided_by_the_other_objective():
    assert non_dominated_mask([(1, 2), (1, 3)]).tolist() == [True, False]
    assert non_dominated_mask([(1, 2), (2, 2)]).tolist() == [True, False]
    assert non_dominated_mask([(1, 3), (2, 2), (1, 3)]).tolist() == [True, True, True]


def test_points_outside_or_on_the_reference_enclose_nothing():
    assert hypervolume([(5, 1)], (4, 4)) == 0.0
    assert hypervolume([(4, 1)], (4, 4)) == 0.0
    assert hypervolume([(5, 1), (3, 3)], (4, 4)) == pytest.approx(1.0)
    assert hypervolume(np.zeros((0, 2)), (1, 1)) == 0.0


def test_3d_front_and_hypervolume_by_hand():
    corners = [(0, 0, 1), (0, 1, 0), (1, 0, 0)]
    assert non_dominated_mask(corners).all()
    # The 2x2x2 cube minus the unreached unit cube [0,1]^3.
    assert hypervolume(corners, (2, 2, 2)) == pytest.approx(7.0)
    assert hypervolume([(1, 1, 1)], (2, 2, 2)) == pytest.approx(1.0)


def test_3d_duplicates_ties_and_dominated_points():
    points = [(0, 0, 1), (0, 1, 0), (1, 0, 0), (0, 0, 1), (1, 1, 1), (0, 0, 2)]
    assert non_dominated_mask(points).tolist() == [True, True, True, True, False, False]
    assert hypervolume(points, (2, 2, 2)) == pytest.approx(7.0)


def test_non_dominated_ranks_peel_fronts():
    assert non_dominated_ranks([(1, 1), (2, 2), (3, 3), (1, 1), (0, 4)]).tolist() == [0, 1, 2, 0, 0]


def test_to_minimize_negates_maximised_columns():
    np.testing.assert_array_equal(to_minimize([(90.0, 2.0)], maximize=(True, False)), [[-90.0, 2.0]])
    with pytest.raises(ValueError, match="2 objectives"):
        to_minimize([(1.0, 2.0)], maximize=(True,))


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="NaN in rows \\[1\\]"):
        non_dominated_mask([(1, 2), (np.nan, 1)])
    with pytest.raises(ValueError, match="2-D"):
        non_dominated_mask([[[1]]])
    with pytest.raises(ValueError, match="3 coordinates for 2"):
        hypervolume([(1, 2)], (1, 2, 3))


def _inclusion_exclusion(points, ref):
    """Independent hypervolume: the volume of a union of boxes by inclusion-exclusion."""
    points = [p for p in points if all(a < r for a, r in zip(p, ref))]
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(points, k):
            corner = np.max(subset, axis=0)
            total += (-1) ** (k + 1) * float(np.prod(np.asarray(ref) - corner))
    return total


coords = st.integers(min_value=0, max_value=5)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 3).flatmap(lambda m: st.lists(st.tuples(*[coords] * m), min_size=1, max_size=7)))
def test_hypervolume_matches_inclusion_exclusion(points):
    ref = (5.5,) * len(points[0])
    assert hypervolume(points, ref) == pytest.approx(_inclusion_exclusion(points, ref))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 3).flatmap(lambda m: st.lists(st.tuples(*[coords] * m), min_size=1, max_size=9)))
def test_mask_matches_pairwise_definition(points):
    expected = [not any(dominates(q, p) for q in points) for p in points]
    assert non_dominated_mask(points).tolist() == expected
