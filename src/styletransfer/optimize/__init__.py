"""The optimisation loop: gradient descent on the image itself.

- :mod:`.progress`: :class:`Progress` reports, the :class:`Reporter`, :class:`Interrupted`, :class:`Diverged`;
- :mod:`.adam`: the seed's Adam (Keras' update rule), with its divergence rule;
- :mod:`.lbfgs`: projected L-BFGS in the [0, 1] box (its :class:`LbfgsConfig`), for one image or a batch in lockstep;
- :mod:`.lowpass`: L-BFGS's low-pass preconditioner;
- :mod:`.outcome`: :class:`Outcome`, how a run ended (complete, interrupted, diverged), as a value.

The loop reports progress by calling back with a :class:`Progress`; it never
prints or writes files.  No NaN image is ever returned.
"""

from __future__ import annotations

from .adam import KerasAdam, LearningRateLowered, run_adam
from .lbfgs import Curvature, LbfgsConfig, run_lbfgs, run_lbfgs_batch
from .lowpass import LowPassBoost
from .outcome import Outcome, Status
from .progress import SCORING_RESERVE, Callback, Diverged, Interrupted, Progress, Reporter, StopCheck

__all__ = [
    "SCORING_RESERVE",
    "Callback",
    "Curvature",
    "Diverged",
    "Interrupted",
    "KerasAdam",
    "LbfgsConfig",
    "LearningRateLowered",
    "LowPassBoost",
    "Outcome",
    "Progress",
    "Reporter",
    "Status",
    "StopCheck",
    "run_adam",
    "run_lbfgs",
    "run_lbfgs_batch",
]
