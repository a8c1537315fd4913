"""CUSUMs and their limits: evidence that adds up over time, for change too slow for any one window.

A CUSUM sums log-likelihood ratios (or standardised scores less an allowance), never going below
zero: S_t = max(0, S_{t-1} + x_t). With X the running sum of the steps, that is X - min(0, min of
X so far), so it is computed without a loop. Its limit is set for a stated false-alarm rate: the
in-control average run length, by Siegmund's approximation with the usual 1.166 sigma overshoot.

The approximation assumes independent steps. Steps that share an error do not qualify: a CUSUM of
one feature's PSI over windows, each scored against the same reference, adds up the reference's
own sampling error too (measured: 2.5 false alarms per 100 quiet windows with windows half the
reference's size), which is why drift scores are judged per window (`psi_critical`) instead.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize


def cusum(steps: np.ndarray, start: float = 0.0) -> np.ndarray:
    """The CUSUM's level after each step, from level `start` (>= 0: where the last block left it)."""
    running = start + np.cumsum(np.asarray(steps, dtype=float))
    return running - np.minimum(np.minimum.accumulate(running), 0.0)


def limit_for(mean: float, sd: float, run_length: float) -> float:
    """The limit a CUSUM whose steps have this (negative) mean and this spread passes by noise
    alone about once in `run_length` steps."""
    if mean >= 0 or sd <= 0:
        raise ValueError("an in-control CUSUM needs steps of negative mean and positive spread")
    delta = -mean / sd

    def excess(b: float) -> float:
        return (np.expm1(2 * delta * b) - 2 * delta * b) / (2 * delta**2) - run_length

    b = optimize.brentq(excess, 1e-6, 350 / delta)  # exp() stays finite up there
    return float(max(b - 1.166, 0.0) * sd)
