"""The sampled search mode must still learn which scheme is better, from the task loss alone.

With no budget, 8-bit uniform loses far less accuracy than binary, so the scheme logits of every slot
should move toward uniform. (The former one-path estimator failed this: behind BatchNorm its logit
gradient is close to zero and the logits only drifted.)
"""

import warnings

import pytest
import torch

import hwqnn
from hwqnn.data import make_loader
from hwqnn.searching.train import train_epoch


@pytest.mark.parametrize("single_path", [True, False], ids=["sampled", "mixture"])
def test_task_loss_alone_moves_logits_toward_the_accurate_scheme(tiny_cnn, digits, single_path):
    example = digits.train[0][0][None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qmodel = hwqnn.convert(tiny_cnn, example, schemes=["binary", "uniform"], bits_range=(8, 8)).set_search()
    slots = [slot for _, _, slot in qmodel.slots()]
    for slot in slots:
        slot.single_path = single_path
    logits = [slot.logits.alpha for slot in slots]
    arch = {id(p) for p in logits} | {id(slot.bits) for slot in slots}
    weights = [p for p in qmodel.parameters() if id(p) not in arch]
    optimizers = [torch.optim.Adam(weights, lr=1e-3), torch.optim.Adam(logits, lr=0.05)]
    torch.manual_seed(0)
    for epoch in range(2):
        train_epoch(qmodel, make_loader(digits.train, 64, train=True, seed=epoch), optimizers, torch.device("cpu"))
    preference = torch.stack([a.detach()[1] - a.detach()[0] for a in logits])  # uniform minus binary
    assert bool((preference > 0).all()), preference
