"""Where the sampled search step's time goes: the same step with fewer paths, side by side with float.

Variants (ResNet-20, batch 128, CPU; search-step / float-step ratio, median of --rounds rounds):

* the sampled mode as shipped: weights mix all schemes, activations mix 2 sampled schemes;
* weights also mix only 2 sampled schemes;
* weights 2 sampled, activations 1 sampled scheme (the old single-path cost; its logit gradient
  carries no accuracy signal behind BatchNorm, see ``QuantSlot._two_sampled_paths``).

The two lighter variants are measured by patching ``QuantSlot.forward`` in this process only.

    python bench/search_step_breakdown.py --rounds 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import bench_search_step as base  # noqa: E402

from hwqnn.qag.slot import QuantSlot  # noqa: E402


def _ratio(float_step, search_step, rounds: int) -> float:
    for _ in range(2):
        float_step()
        search_step()
    ratios = []
    for _ in range(rounds):
        f = base.timed(float_step)
        ratios.append(base.timed(search_step) / f)
    return statistics.median(ratios)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    float_step, search_step, n_schemes, _ = base.make_steps(128, "bitfusion", single_path=True)
    shipped = QuantSlot.forward

    def weights_two(self, x):
        if self.mode == "search" and self.single_path and self.training and self.role == "weight":
            return self._two_sampled_paths(x, self.continuous_bits())
        return shipped(self, x)

    def weights_two_acts_one(self, x):
        if self.mode == "search" and self.single_path and self.training:
            if self.role == "weight":
                return self._two_sampled_paths(x, self.continuous_bits())
            k = int(torch.randint(len(self.scheme_names), ()))
            return self.candidates[self.scheme_names[k]](x, self.continuous_bits())
        return shipped(self, x)

    print("| variant | search / float step |\n|---|---|")
    for label, forward in ((f"weights mix all {n_schemes}, activations 2 sampled (shipped)", shipped),
                           ("weights 2 sampled, activations 2 sampled", weights_two),
                           ("weights 2 sampled, activations 1 sampled", weights_two_acts_one)):
        QuantSlot.forward = forward
        print(f"| {label} | {_ratio(float_step, search_step, args.rounds):.2f}x |", flush=True)
    QuantSlot.forward = shipped


if __name__ == "__main__":
    main()
