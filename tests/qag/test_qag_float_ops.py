"""QAG and the cost models list the same ops left float for every zoo model (a converted model takes
them from the recorder's run of the float model), and each is charged to a row QAG has."""

from __future__ import annotations

import pytest

from cost_models.workload import extract_workload
from hwqnn.models import list_models


@pytest.mark.parametrize("name", list_models())
def test_qag_and_eager_list_the_same_float_ops(name, converted_zoo):
    conversion = converted_zoo(name)
    eager = extract_workload(conversion.model, conversion.example)
    recorded = conversion.qmodel.workload
    assert recorded.float_ops == eager.float_ops
    assert recorded.float_op_rows() == eager.float_op_rows()
    assert {op.after_layer for op in recorded.float_ops} <= set(recorded.names)
    assert all(op.pricing != "unpriced" for op in recorded.float_ops), "a zoo model has an op the tables miss"
