"""Model selection: which number of segments, judged six ways, and how stable the answer is.

Everything here is a pure function of the preprocessed sample it is given.

The rule (documented in the README): every k in ``[k_min, k_max]`` is fitted ``random_states``
times on the sample, each time with its own seed. Five criteria then judge every k:
mean silhouette (on a sub-sample, higher is better), mean Davies-Bouldin index (lower), mean
Calinski-Harabasz index (higher), the elbow of the mean inertia curve (how far below the chord
from the first to the last k, higher) and the gap statistic (Tibshirani et al.'s stopping margin
``gap(k) - gap(k+1) + s(k+1)``, higher). Stability is measured per k too: the mean adjusted Rand
index between refits on bootstrap resamples (higher). Only k whose stability reaches the
acceptance threshold take part (all k, if none does). The six criteria each rank the k, and the
lowest sum of ranks wins (a Borda count); a tie goes to the higher mean silhouette. Each
criterion's own favourite is stored too. The winning k's best-silhouette fit seeds the final fit.
"""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import joblib
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.utils import check_random_state

from ml_tasks.config import AlgorithmConfig, SelectionConfig
from ml_tasks.model import NOISE_LABEL, SegmentClusterer

log = logging.getLogger(__name__)

CRITERIA = ("silhouette", "davies_bouldin", "calinski_harabasz", "elbow", "gap", "stability")


@dataclass
class ModelSelection:
    """The outcome of a sweep: the chosen k and every score behind the choice."""

    k: int
    seed: int
    votes: dict[str, int]
    sweep: pd.DataFrame  # one row per (k, seed): silhouette, davies_bouldin, ...
    by_k: pd.DataFrame  # one row per k: mean scores, gap, gap_sd, stability_ari
    init_centers: np.ndarray | None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def stability_ari(self) -> float:
        return float(self.by_k.loc[self.k, "stability_ari"])

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "votes": self.votes,
            "stability_ari": self.stability_ari,
            "by_k": json.loads(self.by_k.reset_index().to_json(orient="records")),
            "sweep": json.loads(self.sweep.to_json(orient="records")),
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


def labelling_scores(
    X: np.ndarray, labels: np.ndarray, silhouette_sample_size: int, random_state: int
) -> dict[str, float | None]:
    """Silhouette (on a sub-sample), Davies-Bouldin and Calinski-Harabasz of one labelling;
    noise points (HDBSCAN) are left out. None when there are fewer than two clusters."""
    X, labels = _clustered(X, labels)
    if len(np.unique(labels)) < 2:
        return {"silhouette": None, "davies_bouldin": None, "calinski_harabasz": None}
    return {
        "silhouette": sampled_silhouette(X, labels, silhouette_sample_size, random_state),
        "davies_bouldin": float(davies_bouldin_score(X, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(X, labels)),
    }


def sampled_silhouette(
    X: np.ndarray, labels: np.ndarray, silhouette_sample_size: int, random_state: int
) -> float | None:
    """The silhouette of ``labelling_scores`` alone (without the other two criteria, which
    read every row): on a sub-sample, noise left out, None with fewer than two clusters."""
    X, labels = _clustered(X, labels)
    if len(np.unique(labels)) < 2:
        return None
    size = min(silhouette_sample_size, len(labels))
    return float(silhouette_score(X, labels, sample_size=size, random_state=random_state))


def _clustered(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows in a cluster (HDBSCAN's noise left out); all of them without a copy."""
    assigned = labels != NOISE_LABEL
    return (X, labels) if assigned.all() else (X[assigned], labels[assigned])


def elbow_k(inertia_by_k: pd.Series) -> int:
    """The knee of a decreasing inertia curve: the k farthest below the first-to-last chord."""
    ks = inertia_by_k.index.to_numpy(dtype=float)
    inertia = inertia_by_k.to_numpy(dtype=float)
    if len(ks) < 3:
        return int(ks[0])
    chord = inertia[0] + (inertia[-1] - inertia[0]) * (ks - ks[0]) / (ks[-1] - ks[0])
    return int(ks[int(np.argmax(chord - inertia))])


def gap_statistic(X: np.ndarray, ks: list[int], references: int, random_state: int) -> pd.DataFrame:
    """Gap and its standard error per k, against uniform references drawn in the bounding box of
    the data's principal axes (Tibshirani, Walther & Hastie 2001, method b)."""
    rng = check_random_state(random_state)
    centred = X - X.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    rotated = centred @ axes.T
    low, high = rotated.min(axis=0), rotated.max(axis=0)
    reference_sets = [rng.uniform(low, high, size=rotated.shape) for _ in range(references)]
    rows = []
    for k in ks:
        if k < 2:  # HDBSCAN that found no cluster
            rows.append({"k": k, "gap": np.nan, "gap_sd": np.nan})
            continue
        log_w = np.log(_dispersion(rotated, k, rng))
        log_w_ref = np.array([np.log(_dispersion(ref, k, rng)) for ref in reference_sets])
        rows.append(
            {
                "k": k,
                "gap": float(log_w_ref.mean() - log_w),
                "gap_sd": float(log_w_ref.std() * np.sqrt(1 + 1 / references)),
            }
        )
    return pd.DataFrame(rows).set_index("k")


def _dispersion(X: np.ndarray, k: int, rng: np.random.RandomState) -> float:
    return float(KMeans(k, n_init=1, random_state=rng.randint(2**31 - 1)).fit(X).inertia_)


def gap_k(gaps: pd.DataFrame) -> int:
    """Tibshirani's rule: the smallest k with gap(k) >= gap(k+1) - s(k+1); else the largest gap."""
    ks = list(gaps.index)
    for k, next_k in itertools.pairwise(ks):
        if gaps.loc[k, "gap"] >= gaps.loc[next_k, "gap"] - gaps.loc[next_k, "gap_sd"]:
            return int(k)
    return int(gaps["gap"].idxmax())


def bootstrap_stability(
    X: np.ndarray,
    make_model: Callable[[int], SegmentClusterer],
    resamples: int,
    random_state: int,
    *,
    subsample: float | None = None,
) -> float:
    """Mean adjusted Rand index between the labellings of ``X`` by models refitted on bootstrap
    resamples of ``X``: 1.0 means the segments do not depend on which customers were drawn.

    ``subsample`` draws that share of the rows without replacement instead (for density-based
    clustering, which repeated rows would distort)."""
    rng = check_random_state(random_state)
    labellings = []
    for _ in range(max(resamples, 2)):
        if subsample is None:
            rows = rng.choice(len(X), size=len(X), replace=True)
        else:
            rows = rng.choice(len(X), size=round(subsample * len(X)), replace=False)
        model = make_model(rng.randint(2**31 - 1)).fit(X[rows])
        labellings.append(model.predict(X))
    pairs = itertools.combinations(labellings, 2)
    return float(np.mean([adjusted_rand_score(a, b) for a, b in pairs]))


def knee_distance(inertia_by_k: pd.Series) -> pd.Series:
    """How far each k's inertia lies below the chord from the first to the last k (the elbow
    is the largest)."""
    ks = inertia_by_k.index.to_numpy(dtype=float)
    inertia = inertia_by_k.to_numpy(dtype=float)
    if len(ks) < 3:
        return pd.Series(0.0, index=inertia_by_k.index)
    chord = inertia[0] + (inertia[-1] - inertia[0]) * (ks - ks[0]) / (ks[-1] - ks[0])
    return pd.Series(chord - inertia, index=inertia_by_k.index)


def gap_margin(gaps: pd.DataFrame) -> pd.Series:
    """Tibshirani's stopping margin ``gap(k) - gap(k+1) + s(k+1)`` (the last k has none)."""
    following = gaps.shift(-1)
    return (gaps["gap"] - following["gap"] + following["gap_sd"]).fillna(-np.inf)


def vote(by_k: pd.DataFrame, min_stability_ari: float) -> tuple[int, dict[str, int], list[str]]:
    """Apply the documented rule to the per-k table; returns k, each criterion's favourite, notes.

    Each criterion ranks the eligible k (1 = best) and the lowest rank sum wins (a Borda count),
    so a k that every criterion finds good beats one that a single criterion loves.
    """
    notes = []
    eligible = by_k[by_k["stability_ari"] >= min_stability_ari]
    if eligible.empty:
        notes.append(
            f"no k reached stability ARI {min_stability_ari}; all k were eligible for votes"
        )
        eligible = by_k
    scored = eligible.dropna(subset=["silhouette"])
    if scored.empty:
        scored = eligible
    # Larger is better for every column of this table.
    criteria = pd.DataFrame(
        {
            "silhouette": scored["silhouette"],
            "davies_bouldin": -scored["davies_bouldin"],
            "calinski_harabasz": scored["calinski_harabasz"],
            "elbow": knee_distance(scored["inertia"]),
            "gap": gap_margin(scored[["gap", "gap_sd"]]),
            "stability": scored["stability_ari"],
        }
    )
    votes = {name: int(criteria[name].idxmax()) for name in criteria}
    votes["elbow"] = elbow_k(scored["inertia"])
    votes["gap"] = gap_k(scored[["gap", "gap_sd"]])
    rank_sum = criteria.rank(ascending=False, method="min").sum(axis=1)
    leaders = rank_sum[rank_sum == rank_sum.min()].index
    k = int(max(leaders, key=lambda candidate: scored.loc[candidate, "silhouette"]))
    notes.append(f"rank sums: { {int(i): float(v) for i, v in rank_sum.items()} }")
    return k, votes, notes


def select_model(
    X: np.ndarray,
    selection: SelectionConfig,
    algorithm: AlgorithmConfig,
    *,
    min_stability_ari: float,
    random_state: int,
    k_override: int | None = None,
) -> ModelSelection:
    """Sweep k and seeds on a sample of ``X``, score, vote, and measure stability."""
    started = time.perf_counter()
    rng = check_random_state(random_state)
    sample = (
        X[rng.choice(len(X), size=selection.sample_size, replace=False)]
        if len(X) > (selection.sample_size)
        else X
    )
    # Ward is deterministic on a given sample: one seed is all there is to fit.
    repeats = 1 if algorithm.name == "ward" else selection.random_states
    seeds = [int(s) for s in rng.randint(2**31 - 1, size=repeats)]
    if algorithm.name == "hdbscan":
        ks = [0]  # HDBSCAN finds its own number of clusters
    elif k_override is not None:
        ks = [k_override]
    else:
        ks = list(range(selection.k_min, min(selection.k_max, len(sample) - 1) + 1))
        if not ks:
            raise ValueError(
                f"Need more than {selection.k_min} customers to choose k, got {len(sample)}."
            )

    with tempfile.TemporaryDirectory(prefix="ward-trees-") as cache:
        # Ward's merge tree depends on the rows only: cached, each sample's is built once for
        # all k (and each bootstrap resample's too, as resamples repeat across k).
        memory = joblib.Memory(cache, verbose=0) if algorithm.name == "ward" else None

        def make_model(k: int, seed: int) -> SegmentClusterer:
            return SegmentClusterer(
                algorithm.name,
                n_clusters=k,
                n_init=1,
                fit_sample_size=algorithm.fit_sample_size,
                min_cluster_size=algorithm.hdbscan_min_cluster_size,
                memory=memory,
                random_state=seed,
            )

        return _sweep(
            sample, ks, seeds, make_model, selection, algorithm, min_stability_ari, started
        )


def _sweep(
    sample: np.ndarray,
    ks: list[int],
    seeds: list[int],
    make_model: Callable[[int, int], SegmentClusterer],
    selection: SelectionConfig,
    algorithm: AlgorithmConfig,
    min_stability_ari: float,
    started: float,
) -> ModelSelection:
    """Fit every (k, seed) on the sample, score, measure stability per k, and vote."""
    rows, centers = [], {}
    for k in ks:
        for seed in seeds:
            model = make_model(k, seed).fit(sample)
            scores = labelling_scores(sample, model.labels_, selection.silhouette_sample_size, seed)
            rows.append(
                {"k": model.n_clusters_ if algorithm.name == "hdbscan" else k, "seed": seed}
                | scores
                | {"inertia": model.inertia_}
            )
            centers[(rows[-1]["k"], seed)] = model.cluster_centers_
        log.info("Model selection: k=%s fitted with %d seeds", k or "auto", len(seeds))
    sweep = pd.DataFrame(rows)
    by_k = sweep.drop(columns="seed").groupby("k").mean()
    if algorithm.name == "hdbscan":
        # One k per seed may differ; keep the most frequent one.
        by_k = by_k.loc[[int(sweep["k"].mode().iloc[0])]]
    gap_sample = sample[: selection.silhouette_sample_size]
    by_k = by_k.join(
        gap_statistic(gap_sample, list(by_k.index), selection.gap_references, seeds[0])
    )
    by_k["stability_ari"] = [
        bootstrap_stability(
            sample,
            lambda seed, k=k: make_model(k, seed),
            selection.bootstrap_resamples,
            seeds[0],
            subsample=0.8 if algorithm.name == "hdbscan" else None,
        )
        for k in by_k.index
    ]
    if len(by_k) == 1:
        k, votes, notes = int(by_k.index[0]), dict.fromkeys(CRITERIA, int(by_k.index[0])), []
        notes.append("k was fixed (override or HDBSCAN); criteria not compared")
    else:
        k, votes, notes = vote(by_k, min_stability_ari)
    best = sweep[sweep["k"] == k].sort_values("silhouette", ascending=False, na_position="last")
    seed = int(best["seed"].iloc[0])
    return ModelSelection(
        k=k,
        seed=seed,
        votes=votes,
        sweep=sweep,
        by_k=by_k,
        init_centers=centers[(k, seed)] if algorithm.name == "kmeans" else None,
        seconds=time.perf_counter() - started,
        notes=notes,
    )
