"""The nightly recluster: features of the as-of date in, a segment version out.

1. Load the as-of date's features; leave out configured features with no value at all.
2. Decide the mode (``refresh``): *assign* tonight's customers to the previous version's model
   when drift is small, or *full*: preprocess, select k (``selection``), fit.
3. Give clusters stable ids (``matching``) and personas (``profiles``).
4. Judge the result against ``acceptance``; store it as a candidate, or as rejected with the
   reason (the previous version stays current).
"""

from __future__ import annotations

import logging
import pickle
import platform
import time
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

from ml_tasks import versions
from ml_tasks.config import FeatureConfig, SegmentationConfig, load_config
from ml_tasks.drift import feature_psi, feature_reference, segment_share_change
from ml_tasks.features import absent_features, fingerprint, load_customer_features
from ml_tasks.matching import match_segments, member_overlap, transitions
from ml_tasks.model import NOISE_LABEL, SegmentClusterer
from ml_tasks.preprocess import make_preprocessor
from ml_tasks.profiles import (
    FIXED_SEGMENTS,
    PROSPECT_SEGMENT_ID,
    UNASSIGNED_SEGMENT_ID,
    describe_segments,
    rank_by_value,
)
from ml_tasks.selection import labelling_scores, select_model

log = logging.getLogger(__name__)


class ReclusterError(RuntimeError):
    """The recluster cannot run as asked (e.g. assign mode without a reusable model)."""


@dataclass
class SegmentModel:
    """What a full recluster stores with its version, so later nights can assign without
    refitting: the fitted preprocessing and clusterer, the label -> segment id map, the features
    it used and the drift reference of the customers it was fitted on."""

    preprocessor: Pipeline
    clusterer: SegmentClusterer
    segment_id_by_label: dict[int, int]
    features: FeatureConfig
    drift_reference: dict
    fitted_as_of: date
    sklearn_version: str

    def assign(self, buyers: pd.DataFrame) -> pd.Series:
        X = self.preprocessor.transform(buyers[list(self.features.all_columns)])
        labels = self.clusterer.predict(X)
        return pd.Series(_segment_ids(labels, self.segment_id_by_label), index=buyers.index)


@dataclass(frozen=True)
class RefreshDecision:
    mode: str  # "full" or "assign"
    reason: str
    drift: dict


def _segment_ids(labels: np.ndarray, id_by_label: dict[int, int]) -> np.ndarray:
    """Cluster labels (``NOISE_LABEL`` for noise) to segment ids, vectorised."""
    lookup = np.full(max(id_by_label, default=0) + 2, UNASSIGNED_SEGMENT_ID, dtype=np.int64)
    for label, segment_id in id_by_label.items():
        lookup[label + 1] = segment_id
    return lookup[np.asarray(labels, dtype=np.int64) + 1]


def previous_version(con: duckdb.DuckDBPyConnection, as_of_date: date) -> dict | None:
    """The version tonight's ids continue from: the current one when its as-of date is not
    later than tonight's, else (a backfill of an older date) the newest published version up
    to tonight's date. Versions whose member rows were pruned cannot be matched against."""
    versions.ensure_segments_schema(con)
    current = versions.current_version(con)
    if current and current["as_of_date"] <= as_of_date and current["members_pruned_at"] is None:
        return current
    return versions.fetch_dict(
        con,
        """
        select * from segments.segment_versions
        where status = 'published' and as_of_date <= ? and members_pruned_at is null
        order by as_of_date desc, version_id desc
        limit 1
        """,
        [as_of_date],
    )


def _reusable_model(
    con: duckdb.DuckDBPyConnection, previous: dict | None, as_of_date: date
) -> tuple[SegmentModel | None, str]:
    if previous is None:
        return None, "no previous version"
    model_version = _model_version_of(previous)
    blob = versions.load_model(con, model_version)
    if blob is None:
        return None, f"version {model_version} has no stored model"
    model: SegmentModel = pickle.loads(blob)  # our own warehouse, written by this module
    if model.sklearn_version != sklearn.__version__:
        return None, (
            f"the model of version {model_version} was fitted with scikit-learn "
            f"{model.sklearn_version}, this is {sklearn.__version__}"
        )
    if model.fitted_as_of > as_of_date:
        return None, f"the model of version {model_version} was fitted on later data"
    return model, f"model of version {model_version}"


def decide_refresh(
    config: SegmentationConfig,
    requested: str,
    as_of_date: date,
    model: SegmentModel | None,
    why_no_model: str,
    buyers: pd.DataFrame,
    previous_members: pd.Series | None,
) -> RefreshDecision:
    """Full recluster or assignment to the previous model, and why (stored with the version).

    ``auto`` refits when there is no reusable model, on the configured cadence, or when a
    feature's PSI or a segment's share drifts past its threshold; otherwise it assigns.
    """
    if requested == "full":
        return RefreshDecision("full", "full recluster requested", {})
    problem = why_no_model if model is None else _feature_mismatch(model, buyers)
    if problem:
        if requested == "assign":
            raise ReclusterError(f"Assign mode needs a reusable model, but {problem}.")
        return RefreshDecision("full", f"no reusable model ({problem})", {})
    psi = feature_psi(model.drift_reference, buyers)
    worst_feature = max(psi, key=psi.get)
    shares = {}
    if previous_members is not None and not previous_members.empty:
        previous_buyers = previous_members[previous_members.index.isin(buyers.index)]
        shares = segment_share_change(previous_buyers, model.assign(buyers))
    worst_share = max(shares.values(), default=0.0)
    drift = {
        "feature_psi": {k: round(v, 6) for k, v in psi.items()},
        "segment_share_change": {str(k): v for k, v in shares.items()},
    }
    age = (as_of_date - model.fitted_as_of).days
    refresh = config.refresh
    if requested == "assign":
        reason = "assign mode requested"
    elif age >= refresh.full_every_days:
        reason = f"cadence: model fitted {age} days ago (full_every_days {refresh.full_every_days})"
    elif psi[worst_feature] > refresh.max_feature_psi:
        reason = f"drift: {worst_feature} PSI {psi[worst_feature]:.3f} > {refresh.max_feature_psi}"
    elif worst_share > refresh.max_segment_share_change:
        reason = (
            f"drift: a segment's share moved {worst_share:.3f} > {refresh.max_segment_share_change}"
        )
    else:
        reason = (
            f"small drift: max PSI {psi[worst_feature]:.3f} ({worst_feature}), max share change "
            f"{worst_share:.3f}; model {age} days old"
        )
    mode = "assign" if requested == "assign" or reason.startswith("small drift") else "full"
    return RefreshDecision(mode, reason, drift)


def _feature_mismatch(model: SegmentModel, buyers: pd.DataFrame) -> str | None:
    missing = [c for c in model.features.all_columns if c not in buyers or buyers[c].isna().all()]
    return f"tonight has no values for the model's features {missing}" if missing else None


def fit_full(
    buyers: pd.DataFrame,
    config: SegmentationConfig,
    features: FeatureConfig,
    *,
    k_override: int | None = None,
):
    """Preprocess, select k, fit on everyone. Returns the fitted pieces, labels and scores."""
    preprocessor = make_preprocessor(features, config.preprocessing, config.random_state)
    started = time.perf_counter()
    X = preprocessor.fit_transform(buyers[list(features.all_columns)])
    selection = select_model(
        X,
        config.selection,
        config.algorithm,
        min_stability_ari=config.acceptance.min_stability_ari,
        random_state=config.random_state,
        k_override=k_override,
    )
    log.info(
        "Model selection in %.1f s: votes %s -> k=%d (stability ARI %.3f)",
        selection.seconds,
        selection.votes,
        selection.k,
        selection.stability_ari,
    )
    clusterer = SegmentClusterer(
        config.algorithm.name,
        n_clusters=selection.k,
        init=selection.init_centers,
        minibatch_threshold=config.algorithm.minibatch_threshold,
        fit_sample_size=config.algorithm.fit_sample_size,
        min_cluster_size=config.algorithm.hdbscan_min_cluster_size,
        random_state=selection.seed,
    ).fit(X)
    log.info(
        "Fitted %s with k=%d on %d customers in %.1f s",
        config.algorithm.name,
        clusterer.n_clusters_,
        len(buyers),
        time.perf_counter() - started,
    )
    return preprocessor, clusterer, X, selection


def check_acceptance(config: SegmentationConfig, scores: dict, profiles: pd.DataFrame) -> list[str]:
    """Reasons the model must not be published (empty when it passes every threshold)."""
    rules = config.acceptance
    problems = []
    silhouette = scores.get("silhouette")
    if silhouette is None or silhouette < rules.min_silhouette:
        problems.append(f"silhouette {silhouette} < min_silhouette {rules.min_silhouette}")
    stability = scores.get("stability_ari")
    if stability is None or stability < rules.min_stability_ari:
        problems.append(f"stability ARI {stability} < min_stability_ari {rules.min_stability_ari}")
    clustered = profiles[~profiles["segment_id"].isin(list(FIXED_SEGMENTS))]
    small = clustered[clustered["share"] < rules.min_segment_share]
    for row in small.itertuples():
        problems.append(
            f"segment {row.segment_id} holds {row.share:.2%} of customers "
            f"< min_segment_share {rules.min_segment_share:.0%}"
        )
    return problems


def _lineage(
    segment_ids: pd.Series, previous_members: pd.Series | None, previous_ids: set[int]
) -> pd.DataFrame:
    rows = []
    current_ids = sorted(int(s) for s in segment_ids.unique())
    overlap = (
        member_overlap(previous_members, segment_ids)
        if previous_members is not None and not previous_members.empty
        else None
    )
    for segment_id in current_ids:
        if segment_id in FIXED_SEGMENTS:
            outcome = "fixed"
        else:
            outcome = "kept" if segment_id in previous_ids else "new"
        share = None
        if overlap is not None and segment_id in overlap.index and segment_id in overlap.columns:
            share = float(overlap.loc[segment_id, segment_id])
        rows.append({"segment_id": segment_id, "outcome": outcome, "member_overlap": share})
    for segment_id in sorted(previous_ids - set(current_ids) - set(FIXED_SEGMENTS)):
        rows.append({"segment_id": segment_id, "outcome": "retired", "member_overlap": None})
    return pd.DataFrame(rows)


@dataclass
class _Outcome:
    """Tonight's segment ids of the customers with orders, and what produced them."""

    buyer_ids: pd.Series
    X: np.ndarray  # the preprocessed features the ids were computed from
    features: FeatureConfig
    k: int
    kept_names: dict[int, str]
    scores: dict
    model: bytes | None = None  # a new fitted model to store
    model_version_id: int | None = None  # or the version whose model was reused


def _assign_to_model(
    con: duckdb.DuckDBPyConnection,
    model: SegmentModel,
    previous: dict,
    buyers: pd.DataFrame,
    previous_names: dict[int, str],
) -> _Outcome:
    return _Outcome(
        buyer_ids=model.assign(buyers),
        X=model.preprocessor.transform(buyers[list(model.features.all_columns)]),
        features=model.features,
        k=model.clusterer.n_clusters_,
        kept_names=previous_names,
        scores={"stability_ari": _model_stability(con, previous)},
        model_version_id=_model_version_of(previous),
    )


def _fit_new_model(
    con: duckdb.DuckDBPyConnection,
    config: SegmentationConfig,
    features: FeatureConfig,
    buyers: pd.DataFrame,
    as_of_date: date,
    previous_members: pd.Series | None,
    previous_names: dict[int, str],
    k_override: int | None,
) -> _Outcome:
    preprocessor, clusterer, X, selection = fit_full(
        buyers, config, features, k_override=k_override
    )
    clustered = clusterer.labels_ != NOISE_LABEL
    match = match_segments(
        previous_members[previous_members > 0] if previous_members is not None else None,
        pd.Series(clusterer.labels_[clustered], index=buyers.index[clustered]),
        min_member_overlap=config.matching.min_member_overlap,
        next_id=versions.next_segment_id(con),
        first_ids=rank_by_value(buyers[clustered], clusterer.labels_[clustered]),
    )
    log.info("Segment ids: kept %s, new %s, retired %s", match.kept, match.new, match.retired)
    model = SegmentModel(
        preprocessor=preprocessor,
        clusterer=clusterer,
        segment_id_by_label=match.segment_id_by_label,
        features=features,
        drift_reference=feature_reference(
            buyers[[c for c in features.all_columns if c not in features.categorical]]
        ),
        fitted_as_of=as_of_date,
        sklearn_version=sklearn.__version__,
    )
    return _Outcome(
        buyer_ids=pd.Series(
            _segment_ids(clusterer.labels_, match.segment_id_by_label), index=buyers.index
        ),
        X=X,
        features=features,
        k=clusterer.n_clusters_,
        kept_names={sid: previous_names[sid] for sid in match.kept if sid in previous_names},
        scores={"stability_ari": selection.stability_ari, "selection": selection.to_dict()},
        model=pickle.dumps(model),
    )


def recluster(
    con: duckdb.DuckDBPyConnection,
    as_of_date: date,
    *,
    run_id: str = "manual",
    config: SegmentationConfig | None = None,
    mode: str | None = None,
    k: int | None = None,
) -> dict:
    """Fit (or assign) the segments of the as-of date and store them as a version."""
    config = config or load_config()
    requested = mode or config.refresh.mode
    if k is not None:
        if requested == "assign":
            raise ReclusterError("A k override needs a full recluster, not assign mode.")
        requested = "full"
    frame = load_customer_features(con, as_of_date, config.features)
    absent = absent_features(frame, config.features)
    if absent:
        log.warning("Features with no value tonight are left out: %s", absent)
    features = FeatureConfig(
        *(tuple(c for c in group if c not in absent) for group in (
            config.features.log1p, config.features.numeric, config.features.categorical
        ))
    )  # fmt: skip
    buyers = frame[frame["has_orders"]]
    log.info(
        "Loaded features of %d customers (%d with orders) for %s",
        len(frame),
        len(buyers),
        as_of_date,
    )
    previous = previous_version(con, as_of_date)
    previous_members = (
        versions.version_members(con, int(previous["version_id"])) if previous else None
    )
    model, why_no_model = _reusable_model(con, previous, as_of_date)
    decision = decide_refresh(
        config, requested, as_of_date, model, why_no_model, buyers, previous_members
    )
    log.info("Recluster mode: %s (%s)", decision.mode, decision.reason)

    previous_names = versions.segment_names(con, int(previous["version_id"])) if previous else {}
    if decision.mode == "assign":
        outcome = _assign_to_model(con, model, previous, buyers, previous_names)
    else:
        outcome = _fit_new_model(
            con, config, features, buyers, as_of_date, previous_members, previous_names, k
        )
    features, buyer_ids = outcome.features, outcome.buyer_ids
    segment_ids = pd.Series(PROSPECT_SEGMENT_ID, index=frame.index, name="segment_id")
    segment_ids.loc[buyers.index] = buyer_ids.to_numpy()
    scores = {
        **labelling_scores(
            outcome.X,
            buyer_ids.to_numpy(),
            config.selection.silhouette_sample_size,
            config.random_state,
        ),
        **outcome.scores,
        "drift": decision.drift,
    }
    numeric = tuple(c for c in features.all_columns if c not in features.categorical)
    profiles, statistics = describe_segments(
        frame, segment_ids, numeric, features.log1p, kept_names=outcome.kept_names
    )
    problems = check_acceptance(config, scores, profiles)
    status = "rejected" if problems else "candidate"
    names = profiles.set_index("segment_id")["segment_name"]
    candidate = versions.Candidate(
        as_of_date=as_of_date,
        run_id=run_id,
        algorithm=config.algorithm.name,
        k=outcome.k,
        assignments=pd.DataFrame(
            {
                "customer_id": frame.index,
                "segment_id": segment_ids.to_numpy(),
                "segment_name": names.reindex(segment_ids.to_numpy()).to_numpy(),
            }
        ),
        profiles=profiles,
        scores=scores,
        params={
            "requested_mode": requested,
            "k_override": k,
            "features_used": list(features.all_columns),
            "features_absent": absent,
        },
        status=status,
        status_reason="; ".join(problems) or None,
        mode=decision.mode,
        mode_reason=decision.reason,
        model_version_id=outcome.model_version_id,
        previous_version_id=int(previous["version_id"]) if previous else None,
        config=config.to_dict(),
        library_versions={
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "duckdb": duckdb.__version__,
        },
        input_fingerprint=fingerprint(frame),
        feature_stats=statistics,
        lineage=_lineage(segment_ids, previous_members, set(previous_names)),
        transitions=transitions(previous_members, segment_ids) if previous else None,
        model=outcome.model,
    )
    version_id = versions.write_version(con, candidate)
    if problems:
        log.warning("Version %d REJECTED: %s", version_id, "; ".join(problems))
    log.info(
        "Stored %s version %d (%s): k=%d, silhouette=%s, %d customers",
        status,
        version_id,
        decision.mode,
        outcome.k,
        None if scores["silhouette"] is None else round(scores["silhouette"], 3),
        len(frame),
    )
    return {
        "version_id": version_id,
        "status": status,
        "rejected_reasons": problems,
        "as_of_date": as_of_date.isoformat(),
        "mode": decision.mode,
        "mode_reason": decision.reason,
        "k": outcome.k,
        "silhouette": scores["silhouette"],
        "davies_bouldin": scores["davies_bouldin"],
        "calinski_harabasz": scores["calinski_harabasz"],
        "stability_ari": scores.get("stability_ari"),
        "customers": len(frame),
        "segments": profiles[["segment_id", "segment_name", "customer_count"]].to_dict("records"),
    }


def _model_version_of(version: dict) -> int:
    """The version whose fitted model a version used (itself, for a full recluster)."""
    model_version = version.get("model_version_id")
    return int(version["version_id"] if model_version is None else model_version)


def _model_stability(con: duckdb.DuckDBPyConnection, previous: dict) -> float | None:
    row = con.execute(
        "select stability_ari from segments.segment_versions where version_id = ?",
        [_model_version_of(previous)],
    ).fetchone()
    return None if row is None else row[0]
