"""What a fitted GP says about the data: its noise, its lengthscales, whether a reading stands out, where a narrow
peak found lies. Pure functions of a fitted model (or of the readings), for the BoTorch planner's choices."""

from __future__ import annotations

import torch
from botorch.models import ModelListGP
from botorch.models.model import Model
from torch import Tensor

#: Below this fitted noise variance (in standardized units) a GP takes its data as noiseless (with the low-noise
#: prior; what noiseless and noisy problems fit: ``docs/explanation/planners.md``).
NOISELESS_BELOW = 1e-6


def fitted_noise(model: Model) -> Tensor | None:
    """A fitted GP's noise variance per outcome (standardized units), or None for a likelihood without one."""
    if isinstance(model, ModelListGP):
        parts = [fitted_noise(m) for m in model.models]  # type: ignore[arg-type]
        return None if any(p is None for p in parts) else torch.cat([p.reshape(-1) for p in parts if p is not None])
    noise = getattr(getattr(model, "likelihood", None), "noise", None)
    return None if noise is None else noise.detach()


def noiseless(model: Model) -> bool:
    """Whether a fitted GP takes its data as noiseless (noise variance below :data:`NOISELESS_BELOW`)."""
    noise = fitted_noise(model)
    return noise is not None and float(noise.max()) < NOISELESS_BELOW


def noise_share(model: Model) -> float:
    """The largest share of an outcome's (standardized) variance a fitted GP puts in noise, between 0 and 1."""
    noise = fitted_noise(model)
    return 0.0 if noise is None else float((noise / (1.0 + noise)).max())


#: A reading stands out when it is this many robust standard deviations (1.4826 MAD) above the median.
STANDS_OUT = 5.0


def stands_out(y: Tensor) -> bool:
    """Whether the largest of ``y: n`` lies more than :data:`STANDS_OUT` robust standard deviations above the
    median: a signal, where a flat noisy background has none (the largest of 100 normal readings is about 2.5
    standard deviations above their median)."""
    median = y.median()
    spread = 1.4826 * (y - median).abs().median()
    return bool(spread > 0 and (y.max() - median) > STANDS_OUT * spread) or bool(spread == 0 and y.max() > median)


def stood_out(y: Tensor, first: int = 10) -> bool:
    """Whether a reading stood out (:func:`stands_out`) among the first ``k`` readings, for any ``k >= first``.

    Once the data gather on a peak, its readings raise the median and the spread, and the best no longer stands out
    of all of them; it did when the peak was found. A function of the readings in the order ingested.
    """
    return any(stands_out(y[:k]) for k in range(min(first, len(y)), len(y) + 1))


#: BoTorch's lower bound on a GP lengthscale (in the unit cube), and how near it counts as at it.
LENGTHSCALE_FLOOR = 0.025
AT_FLOOR = 1.5


def lengthscales(model: Model) -> Tensor | None:
    """The fitted lengthscales, ``outputs x d`` (in the unit cube), or None for a kernel without them."""
    if isinstance(model, ModelListGP):
        parts = [lengthscales(m) for m in model.models]  # type: ignore[arg-type]
        return None if any(p is None for p in parts) else torch.cat([p for p in parts if p is not None])
    kernel = getattr(model, "covar_module", None)
    lengthscale = getattr(getattr(kernel, "base_kernel", kernel), "lengthscale", None)
    return None if lengthscale is None else lengthscale.detach().reshape(-1, lengthscale.shape[-1])


def interpolates_noise(model: Model) -> bool:
    """Whether a fitted GP may be explaining noise as structure: a lengthscale at (within 1.5x of) BoTorch's lower
    bound, the wiggliest function it may fit along that variable.

    On a flat, noisy background (the narrow-peak benchmark problems, before the peak is found) the low-noise
    prior fits exactly this: noise 1e-8 to 0.15 (standardized) where the data are nearly all noise, lengthscales
    0.025, and the acquisition then chases noise. A genuinely narrow peak or ridge fits short lengthscales too;
    refitting it without the noise prior costs a second fit and finds the same structure.
    """
    per_output = lengthscales(model)
    return per_output is not None and bool((per_output <= AT_FLOOR * LENGTHSCALE_FLOOR).any())


#: A fitted lengthscale (unit cube) below this marks a narrow peak or ridge, for :func:`peak_box`.
NARROW_BELOW = 0.1


def peak_box(model: Model, X: Tensor, Y: Tensor, half_width: float) -> Tensor | None:
    """A ``2 x d`` unit-cube box around a narrow peak the data have found, or None.

    When a reading stood out (:func:`stood_out`) and the GP fits some lengthscale below
    :data:`NARROW_BELOW`, the box reaches ``half_width`` fitted lengthscales either side of the observed point with
    the highest posterior mean. A GP with short lengthscales is unsure of everything a few lengthscales from its
    data, so over the whole space the acquisition sends most points to the flat background, which may hide
    another peak as high (measured: ``docs/explanation/planners.md``). Inside the box it refines the peak; the box
    moves with the best posterior mean, so it follows a ridge.

    Args:
        model: the fitted GP, objective first. X: ``n x d`` ok observations (unit cube). Y: ``n x 1`` objective.
        half_width: in fitted lengthscales.
    """
    ls = lengthscales(model)
    if ls is None or float(ls[0].min()) >= NARROW_BELOW or not stood_out(Y[:, 0]):
        return None
    with torch.no_grad():
        mean = model.posterior(X).mean[..., 0]  # type: ignore[attr-defined]
    centre = X[int(mean.argmax())]
    half = half_width * ls[0]
    return torch.stack([(centre - half).clamp(0.0, 1.0), (centre + half).clamp(0.0, 1.0)])
