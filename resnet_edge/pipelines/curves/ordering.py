"""The order the paper predicts between runs of different depth (He et al. 2015, §4.2 and Figure 6).

Plain nets degrade: the deeper one ends with the *higher* training error (plain-56 above plain-20).
Residual nets do not: the deeper one ends with the lower training error (ResNet-56 below ResNet-20).
Runs are compared at the last epoch both reached, so a run still in progress is compared fairly.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from .runs import RunCurves

# kind -> (comparison the paper predicts between the deeper and the shallower run, its symbol)
PREDICTION = {"plain": (lambda deep, shallow: deep >= shallow, ">="), "residual": (lambda deep, shallow: deep <= shallow, "<=")}


@dataclass(frozen=True)
class PairCheck:
    """One pair of runs of one kind (plain or residual) and family, at different depths."""

    kind: str
    deeper: str  # run labels
    shallower: str
    epoch: int  # the last epoch both runs reached
    deeper_train_error: float
    shallower_train_error: float
    deeper_val_error: float
    shallower_val_error: float
    predicted: str  # e.g. "plain56 >= plain20"
    follows: bool

    @property
    def verdict(self) -> str:
        return "follows" if self.follows else "does not follow"


def check_pair(deeper: RunCurves, shallower: RunCurves) -> PairCheck:
    """Compare the training errors of two runs of one kind at their last common epoch."""
    epoch = min(deeper.final().epoch, shallower.final().epoch)
    deep, shallow = deeper.at_epoch(epoch), shallower.at_epoch(epoch)
    holds, symbol = PREDICTION[deeper.kind]
    return PairCheck(
        kind=deeper.kind, deeper=deeper.label, shallower=shallower.label, epoch=epoch,
        deeper_train_error=deep.train_error, shallower_train_error=shallow.train_error,
        deeper_val_error=deep.val_error, shallower_val_error=shallow.val_error,
        predicted=f"{deeper.label} {symbol} {shallower.label}", follows=holds(deep.train_error, shallow.train_error),
    )


def ordering_checks(runs: list[RunCurves]) -> list[PairCheck]:
    """Every pair of runs of the same kind and family whose depths differ, plain pairs first, shallow first."""
    ordered = sorted(runs, key=lambda run: (not run.plain, run.family, run.depth, run.label))
    pairs = []
    for first, second in combinations(ordered, 2):
        if (first.plain, first.family) == (second.plain, second.family) and first.depth != second.depth:
            shallower, deeper = sorted((first, second), key=lambda run: run.depth)
            pairs.append(check_pair(deeper, shallower))
    return pairs
