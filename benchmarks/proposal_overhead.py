"""What an identity input transform cost BoTorchPlanner: the same sessions with and without it, proposal for proposal.

The planner's data are in the unit cube, so the ``Normalize(bounds=unit cube)`` its GPs carried until this
benchmark was written did nothing but cost time on every kernel evaluation of every fit and acquisition step. Here
``with_normalize`` is the planner with that transform put back (a subclass); ``planner`` is the planner as shipped.
Both run the same harness problems, seeds and noise, alternating, in one process, one torch thread. Prints, per
problem and seed, whether the two proposed exactly the same points (they must: the transform is the identity) and
the ratio of their total proposal seconds.

    python -m benchmarks.proposal_overhead [--problems spot2_noisy,beamline,spot4] [--seeds 2] [--experiments 30]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms import Normalize, Standardize

from benchmarks._problems import PROBLEMS, Problem, Replay
from planners import BoTorchPlanner
from planners.gp.fitting import GPFitting


class NormalizingFitting(GPFitting):
    """The GP fitting with the identity ``Normalize`` input transform its GPs had before."""

    def build(self, X: Any, outcomes: Any, noise_prior: Any = None) -> Any:
        if self.space.cat_dims:  # the mixed GP for categorical variables never had it
            return super().build(X, outcomes, noise_prior)
        k, d = outcomes.shape[-1], self.space.d
        unit = torch.stack([torch.zeros(d), torch.ones(d)]).to(torch.float64)
        return SingleTaskGP(
            X,
            outcomes,
            likelihood=self.likelihood(k, noise_prior),
            input_transform=Normalize(d=d, bounds=unit),
            outcome_transform=Standardize(m=k),
        )


class WithNormalize(BoTorchPlanner):
    """The planner whose GPs have the identity ``Normalize`` input transform."""

    fitting_class = NormalizingFitting


def session(cls: type[BoTorchPlanner], problem: Problem, seed: int, experiments: int) -> tuple[np.ndarray, float]:
    """The points ``cls`` proposes on ``problem`` (one at a time, seeded noise) and its total proposal seconds."""
    replay = Replay(problem, seed).play(cls(problem.vocs, seed=seed, n_initial=10), experiments)
    return np.asarray([list(x.values()) for x in replay.points]), sum(replay.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="spot2_noisy,beamline,spot4")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--experiments", type=int, default=30, help="per session, the 10 initial points included")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'problem':>12} {'seed':>4} {'same points':>11} {'with s':>7} {'planner s':>9} {'ratio':>6}")
    ratios = []
    for name in args.problems.split(","):
        for seed in range(args.seeds):
            before, t_before = session(WithNormalize, PROBLEMS[name], seed, args.experiments)
            after, t_after = session(BoTorchPlanner, PROBLEMS[name], seed, args.experiments)
            ratios.append(t_after / t_before)
            same = "yes" if np.array_equal(before, after) else "NO"
            print(f"{name:>12} {seed:>4} {same:>11} {t_before:>7.2f} {t_after:>9.2f} {ratios[-1]:>6.2f}", flush=True)
    print(f"median ratio planner / with_normalize: {float(np.median(ratios)):.2f}")


if __name__ == "__main__":
    main()
