"""FunctionalCNN: convolutions and the head written as ``F.conv2d`` / ``F.linear`` calls on the module's
own parameters, with no ``nn.Conv2d`` or ``nn.Linear``. It checks that QAG finds quantizable ops that are
functions in the graph, not modules."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._builder import build_model
from ._registry import register_model


def _kaiming_uniform(shape: tuple[int, ...]) -> nn.Parameter:
    """A weight initialised as nn.Conv2d / nn.Linear do (kaiming uniform with a = sqrt(5))."""
    weight = torch.empty(shape)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    return nn.Parameter(weight)


def _bias_for(weight: nn.Parameter) -> nn.Parameter:
    fan_in = weight[0].numel()
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(weight.shape[0]).uniform_(-bound, bound))


class FunctionalCNN(nn.Module):
    """F.conv2d(16) -> ReLU -> F.conv2d(32, stride 2) -> ReLU -> mean over H, W -> F.linear."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, width: int = 16):
        super().__init__()
        self.conv1_weight = _kaiming_uniform((width, in_chans, 3, 3))
        self.conv1_bias = _bias_for(self.conv1_weight)
        self.conv2_weight = _kaiming_uniform((2 * width, width, 3, 3))
        self.conv2_bias = _bias_for(self.conv2_weight)
        self.fc_weight = _kaiming_uniform((num_classes, 2 * width))
        self.fc_bias = _bias_for(self.fc_weight)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(F.conv2d(x, self.conv1_weight, self.conv1_bias, padding=1))
        x = F.relu(F.conv2d(x, self.conv2_weight, self.conv2_bias, stride=2, padding=1))
        return F.linear(x.mean(dim=(2, 3)), self.fc_weight, self.fc_bias)


@register_model(input_shape=(1, 8, 8), default_data="digits")
def functional_cnn(num_classes: int = 10, **kwargs) -> FunctionalCNN:
    """Two functional convolutions and a functional linear head for digits."""
    return build_model(FunctionalCNN, "functional_cnn", num_classes=num_classes, **kwargs)
