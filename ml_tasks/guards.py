"""Business guards: the distinctions every campaign needs, kept apart whatever the clusters find.

On a real shop's log (heavy-tailed spend, mostly continuous frequency and recency) the clusters
follow the bulk of the customers: the few percent who hold half the revenue, or the customers
lapsed for six months, end up as a minority inside a bigger cluster, and nobody can target them.
So after the clustering, three guards (configured under ``guards``) each split customers in two:

* ``top_value``: the top customers by spend who together hold ``top_revenue_share`` of revenue;
* ``lapsed``: no counted order for more than ``lapsed_after_days`` days;
* ``one_time``: exactly one counted order.

``keep_apart`` lists the guards that are on (all three by default).

A guard is *kept* when, on each of its two sides, at least ``min_purity`` of the customers sit in
segments where their side is the majority (the *purity*). While a guard is not kept, the segment
with the most customers sitting on the wrong side of it is split in two along the guard (a part
smaller than the smallest accepted segment is never split off). Clusters that already respect a
guard (the planted demo's) are left alone. The splits are recorded in order, so a later night
assigning customers to the stored model replays them (``replay``).

Everything here is a pure function of the customers' features and labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml_tasks.config import GuardConfig
from ml_tasks.model import NOISE_LABEL

# Rounds over all guards: a later guard's split can (rarely) lower an earlier guard's purity.
_MAX_ROUNDS = 3


@dataclass(frozen=True)
class Split:
    """Customers of ``segment`` on side ``side`` of ``guard`` became segment ``new_label``."""

    segment: int
    guard: str
    side: bool
    new_label: int


@dataclass
class GuardOutcome:
    labels: np.ndarray
    thresholds: dict[str, float]
    splits: list[Split] = field(default_factory=list)
    purity: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "thresholds": self.thresholds,
            "splits": [split.__dict__ for split in self.splits],
            "purity": self.purity,
        }


def top_spend_threshold(total_spend: pd.Series, revenue_share: float) -> float:
    """The spend from which a customer is among the top customers who together hold
    ``revenue_share`` of the revenue (the fewest such customers, ties included)."""
    spend = np.sort(total_spend.to_numpy(dtype=float))[::-1]
    total = spend.sum()
    if total <= 0:
        return float("inf")
    reached = int(np.searchsorted(np.cumsum(spend) / total, revenue_share))
    return float(spend[min(reached, len(spend) - 1)])


def guard_thresholds(buyers: pd.DataFrame, config: GuardConfig) -> dict[str, float]:
    """The cut-offs of the guards on tonight's buyers (the top-value spend is relative)."""
    return {
        "top_value_spend": top_spend_threshold(buyers["total_spend"], config.top_revenue_share),
        "lapsed_after_days": float(config.lapsed_after_days),
    }


def guard_sides(
    buyers: pd.DataFrame, config: GuardConfig, thresholds: dict[str, float]
) -> dict[str, np.ndarray]:
    """Per guard that is on, which buyers are on its named side (top value, lapsed, one-time)."""
    sides = {
        "top_value": buyers["total_spend"].to_numpy(dtype=float) >= thresholds["top_value_spend"],
        "lapsed": buyers["recency_days"].to_numpy(dtype=float) > thresholds["lapsed_after_days"],
        "one_time": buyers["order_count"].to_numpy(dtype=float) == 1,
    }
    return {name: sides[name] for name in config.keep_apart}


def purity(side: np.ndarray, labels: np.ndarray) -> float:
    """Share of the ``side`` customers who sit in segments where ``side`` is the majority
    (1.0 when nobody is on that side)."""
    if not side.any():
        return 1.0
    share = pd.Series(side).groupby(labels).mean()
    majority = share.index[share > 0.5]
    return float(np.isin(labels[side], majority).mean())


def guard_purity(sides: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Both sides' purity of every guard, e.g. ``{"lapsed": {"yes": 0.93, "no": 0.97}}``."""
    return {
        name: {"yes": round(purity(side, labels), 4), "no": round(purity(~side, labels), 4)}
        for name, side in sides.items()
    }


def _worst_split(
    side: np.ndarray, labels: np.ndarray, failing: list[bool], min_size: int
) -> tuple[int, bool] | None:
    """The (segment, side) whose split puts the most customers of a failing side where their
    side is the majority; None when no part is big enough to become a segment."""
    table = pd.crosstab(labels, side).reindex(columns=[False, True], fill_value=0)
    best, best_count = None, 0
    for segment, row in table.iterrows():
        if segment == NOISE_LABEL:  # noise stays unassigned
            continue
        for flag in failing:
            count, other = int(row[flag]), int(row[not flag])
            # Customers of a side sitting where the other side is the majority (or a tie).
            if count <= other and count >= min_size and other > 0 and count > best_count:
                best, best_count = (int(segment), flag), count
    return best


def apply_guards(
    labels: np.ndarray,
    buyers: pd.DataFrame,
    config: GuardConfig,
    *,
    min_size: int,
) -> GuardOutcome:
    """Split clusters until every guard is kept (or no allowed split is left)."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    thresholds = guard_thresholds(buyers, config)
    outcome = GuardOutcome(labels=labels, thresholds=thresholds)
    if not config.keep_apart:
        return outcome
    sides = guard_sides(buyers, config, thresholds)
    next_label = int(labels.max(initial=-1)) + 1
    for _ in range(_MAX_ROUNDS):
        changed = False
        for name, side in sides.items():
            while True:
                failing = [
                    flag
                    for flag in (True, False)
                    if purity(side if flag else ~side, labels) < config.min_purity
                ]
                pick = _worst_split(side, labels, failing, min_size) if failing else None
                if pick is None:
                    break
                segment, flag = pick
                labels[(labels == segment) & (side == flag)] = next_label
                outcome.splits.append(Split(segment, name, flag, next_label))
                next_label += 1
                changed = True
        if not changed:
            break
    outcome.purity = guard_purity(sides, labels)
    return outcome


def replay(
    labels: np.ndarray,
    buyers: pd.DataFrame,
    config: GuardConfig,
    thresholds: dict[str, float],
    splits: list[Split],
) -> np.ndarray:
    """The fitted night's splits applied, in order, to new cluster labels."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    if not splits:
        return labels
    sides = guard_sides(buyers, config, thresholds)
    for split in splits:
        labels[(labels == split.segment) & (sides[split.guard] == split.side)] = split.new_label
    return labels
