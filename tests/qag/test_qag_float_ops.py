"""QAG and the cost models list the same ops left float for every zoo model (a converted model takes
them from the recorder's run of the float model), and each is charged to a row QAG has."""

from __future__ import annotations

import dataclasses

import pytest

from cost_models.workload import extract_workload
from hwqnn.models import list_models


@pytest.mark.parametrize("name", list_models())
def test_qag_and_eager_list_the_same_float_ops(name, converted_zoo):
    conversion = converted_zoo(name)
    eager = extract_workload(conversion.model, conversion.example)
    recorded = conversion.qmodel.workload
    # The same ops. The cost models mark the adds and pools a conv feeds as integer kernels; QAG keeps the
    # mark exactly where it put a join (not on code fx cannot trace, such as branchy_cnn's gated add).
    assert [dataclasses.replace(op, int_bits=None) for op in recorded.float_ops] == \
        [dataclasses.replace(op, int_bits=None) for op in eager.float_ops]
    joined = {join.op_name for join in conversion.qmodel.joins()}
    assert {op.name for op in recorded.float_ops if op.int_bits} == joined
    assert joined <= {op.name for op in eager.float_ops if op.int_bits}
    assert recorded.float_op_rows() == eager.float_op_rows()
    assert {op.after_layer for op in recorded.float_ops} <= set(recorded.names)
    assert all(op.pricing != "unpriced" for op in recorded.float_ops), "a zoo model has an op the tables miss"
