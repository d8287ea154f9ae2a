"""Weight slicing, bit-sharing and extraction of the elastic supernet."""

import random

import pytest
import torch
import torch.nn.functional as F

from hwqnn.nas import Supernet, get_space, list_spaces, random_subnet, uniform_subnet
from hwqnn.nas.elastic import ElasticConv2d, ElasticLinear, recalibrate_bn
from hwqnn.nas.evaluate import calibration_batches
from hwqnn.nas.extract import extract


def test_conv_takes_the_leading_slice_and_centre_kernel():
    torch.manual_seed(0)
    conv = ElasticConv2d(8, 16, 5)
    conv.active_out, conv.active_kernel = 6, 3
    x = torch.randn(2, 4, 9, 9)
    expected = F.conv2d(x, conv.weight[:6, :4, 1:4, 1:4], padding=1)
    assert torch.equal(conv(x), expected)


def test_depthwise_conv_slices_channels():
    conv = ElasticConv2d(12, 12, 5, depthwise=True)
    conv.active_kernel = 3
    x = torch.randn(2, 7, 6, 6)
    expected = F.conv2d(x, conv.weight[:7, :, 1:4, 1:4], padding=1, groups=7)
    assert torch.equal(conv(x), expected)


def test_linear_reads_leading_columns():
    lin = ElasticLinear(32, 10)
    x = torch.randn(3, 20)
    assert torch.equal(lin(x), F.linear(x, lin.weight[:, :20], lin.bias))


def test_bit_sharing_one_weight_one_step_per_bitwidth():
    conv = ElasticConv2d(4, 8, 3)
    x = torch.randn(2, 4, 5, 5)
    outs = {}
    for bits in (2, 4, 8):
        conv.bits = (bits, bits)
        outs[bits] = conv(x)
    step = conv.w_quant.step
    assert [p for p in conv.parameters() if p.dim() == 4] == [conv.weight]  # one float weight
    assert bool(conv.w_quant.step_initialized[[1, 3, 7]].all())
    assert not torch.allclose(step[1], step[7]) and not torch.allclose(step[3], step[7])
    assert not torch.allclose(outs[2], outs[8])
    outs[2].sum().backward()
    assert step.grad[1].abs().sum() > 0 and step.grad[7].abs().sum() == 0  # only the 2-bit step learns from 2 bits


@pytest.mark.parametrize("name", list_spaces())
def test_space_codes_round_trip_and_size(name):
    space = get_space(name)
    archs, joint = space.size()
    assert archs > 1 and joint > archs
    rng = random.Random(0)
    for _ in range(5):
        arch = space.sample(rng)
        assert space.decode(space.encode(arch)) == arch


@pytest.mark.parametrize("name", list_spaces())
def test_extracted_subnet_equals_supernet_subnet(name):
    torch.manual_seed(0)
    space = get_space(name)
    supernet = Supernet(space)
    x = torch.randn(16, *space.input_shape)
    subnet = random_subnet(space, random.Random(1))
    supernet.train().activate(subnet)(x)  # initialise the quantizers of these bits
    qmodel = extract(supernet, subnet, [x])
    supernet.activate(subnet)
    recalibrate_bn(supernet, [x])
    with torch.no_grad():
        assert torch.allclose(supernet(x), qmodel(x), atol=1e-6)
    assert qmodel.current_policy().resolve("classifier").w_bits == subnet.bits[-1][0]


def test_subnet_of_largest_arch_has_every_layer():
    space = get_space("resnet-cifar")
    sub = uniform_subnet(space, space.largest(), 8, 8)
    assert len(sub.bits) == space.num_layers(space.largest()) == 22  # ResNet-20 + 2 projections


def test_calibration_batches_sample_every_class_of_a_class_sorted_split():
    labels = torch.arange(10).repeat_interleave(100).float()
    images = labels[:, None, None, None].expand(-1, 1, 2, 2)
    batches = calibration_batches(images, 4, 16)
    seen = torch.cat([b[:, 0, 0, 0] for b in batches])
    assert len(batches) == 4 and len(set(seen.tolist())) >= 8
    assert all(torch.equal(a, b) for a, b in zip(batches, calibration_batches(images, 4, 16)))
