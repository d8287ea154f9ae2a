"""Time forward+backward of every registered scheme at a continuous bitwidth (not collected by pytest).

Run: ``python bench/bench_schemes.py [--bits 4.5] [--repeats 7] [--threads 1]``. Prints the
median wall time per scheme on a 64x64x3x3 weight (per channel) and a post-ReLU 128x64x16x16
activation, in ms and as a ratio to the forward+backward of the 3x3 convolution those two tensors
feed, measured in the same process (the overhead a quantized layer adds to its float op).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from hwqnn.quantizers import create_scheme, list_schemes


def median_ms(step: Callable[[], object], repeats: int) -> float:
    step()  # warm-up: lazy initialisation, allocator, the ul2q constants
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def scheme_step(name: str, role: str, x: torch.Tensor, bits: float) -> Callable[[], object]:
    scheme = create_scheme(name, role=role, channels=x.shape[0] if role == "weight" else None)
    bitwidth = torch.tensor(bits, requires_grad=True)
    source = x.clone().requires_grad_(True)
    grad_out = torch.randn_like(x)

    def step() -> None:
        scheme(source, bitwidth).backward(grad_out)
        source.grad = bitwidth.grad = None

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bits", type=float, default=4.5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (1: stable on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    weight, activation = torch.randn(64, 64, 3, 3), torch.randn(128, 64, 16, 16).relu()
    conv_ms = median_ms(conv_step(weight, activation), args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), bits={args.bits}, median of "
          f"{args.repeats}; reference: conv2d forward+backward on these tensors {conv_ms:.1f} ms")
    print(f"{'scheme':10s} {'weight ms':>10s} {'/conv':>7s} {'activation ms':>14s} {'/conv':>7s}")
    totals = [0.0, 0.0]
    for name in list_schemes():
        w_ms = median_ms(scheme_step(name, "weight", weight, args.bits), args.repeats)
        a_ms = median_ms(scheme_step(name, "activation", activation, args.bits), args.repeats)
        totals = [totals[0] + w_ms, totals[1] + a_ms]
        print(f"{name:10s} {w_ms:10.2f} {w_ms / conv_ms:7.3f} {a_ms:14.1f} {a_ms / conv_ms:7.2f}")
    print(f"{'total':10s} {totals[0]:10.2f} {totals[0] / conv_ms:7.3f} {totals[1]:14.1f} {totals[1] / conv_ms:7.2f}")


def conv_step(weight: torch.Tensor, activation: torch.Tensor) -> Callable[[], object]:
    w, x = weight.clone().requires_grad_(True), activation.clone().requires_grad_(True)
    grad_out = torch.randn(activation.shape[0], weight.shape[0], *activation.shape[2:])

    def step() -> None:
        torch.nn.functional.conv2d(x, w, padding=1).backward(grad_out)
        w.grad = x.grad = None

    return step


if __name__ == "__main__":
    main()
