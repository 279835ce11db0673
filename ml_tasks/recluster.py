"""The nightly recluster: features of the as-of date in, a segment version out.

1. Load the as-of date's features; leave out configured features with no value at all.
2. Find the *base* version tonight continues from (ids, names, model): the current version when
   it is older than tonight, else the newest published version older than tonight; a re-run of a
   date with nothing older continues from that date's own published version (ids only).
3. Decide the mode (``refresh``): *assign* tonight's customers to the base's model when drift is
   small, or *full*: preprocess, select k (``selection``), fit.
4. Give clusters stable ids (``matching``) and personas (``profiles``).
5. Judge the result against ``acceptance``; store it as a candidate, or as rejected with the
   reasons (the previous version stays current).

``recluster`` reads, decides and writes: ``load_customer_features`` and ``read_base`` read the
warehouse, ``compute_candidate`` (steps 1 to 5, a pure function of DataFrames) decides the
version, and ``store_version`` writes it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import pickle
import platform
import time
from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

from ml_tasks import versions
from ml_tasks.config import FeatureConfig, GuardConfig, SegmentationConfig, load_config
from ml_tasks.drift import feature_psi, feature_reference, segment_share_change
from ml_tasks.features import absent_features, fingerprint, load_customer_features
from ml_tasks.guards import Split, apply_guards, replay
from ml_tasks.matching import (
    in_both,
    match_segments,
    member_overlap,
    membership_changes,
    transitions,
)
from ml_tasks.model import NOISE_LABEL, SegmentClusterer
from ml_tasks.preprocess import make_preprocessor
from ml_tasks.profiles import (
    FIXED_SEGMENTS,
    PROSPECT_SEGMENT_ID,
    UNASSIGNED_SEGMENT_ID,
    VOIDED_SEGMENT_ID,
    NamingRules,
    describe_segments,
    rank_by_value,
)
from ml_tasks.selection import labelling_scores, sampled_silhouette, select_model

log = logging.getLogger(__name__)

# The config sections a fitted model depends on: a change to any of them forces a refit.
MODEL_SECTIONS = ("random_state", "features", "preprocessing", "algorithm", "selection", "guards")


class ReclusterError(RuntimeError):
    """The recluster cannot run as asked (no buyers, or assign mode without a reusable model)."""


def model_config_key(config: SegmentationConfig, features: FeatureConfig) -> str:
    """A hash of what a fitted model depends on: its config sections and the features used."""
    plain = config.to_dict()
    relevant = {name: plain[name] for name in MODEL_SECTIONS}
    relevant["features_used"] = list(features.all_columns)
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class SegmentModel:
    """What a full recluster stores with its version, so later nights can assign without
    refitting: the fitted preprocessing and clusterer, the label -> segment id map, the features
    and config it used, and the drift reference of the customers it was fitted on."""

    preprocessor: Pipeline
    clusterer: SegmentClusterer
    segment_id_by_label: dict[int, int]
    features: FeatureConfig
    drift_reference: dict
    fitted_as_of: date
    sklearn_version: str
    config_key: str
    config: dict = field(default_factory=dict)
    # The business guards' cut-offs and splits of the fitted night (``ml_tasks/guards.py``).
    guards: GuardConfig = field(default_factory=GuardConfig)
    guard_thresholds: dict = field(default_factory=dict)
    guard_splits: list[Split] = field(default_factory=list)

    def assign(self, buyers: pd.DataFrame) -> tuple[pd.Series, np.ndarray, np.ndarray]:
        """Segment id per customer, the preprocessed features they were assigned from and their
        cluster: the nearest cluster, then the fitted night's guard splits replayed."""
        X = self.preprocessor.transform(buyers[list(self.features.all_columns)])
        clusters = self.clusterer.predict(X)
        labels = replay(clusters, buyers, self.guards, self.guard_thresholds, self.guard_splits)
        ids = pd.Series(_segment_ids(labels, self.segment_id_by_label), index=buyers.index)
        return ids, X, clusters

    def to_bytes(self) -> bytes:
        """Pickled without the per-customer training labels, which predict does not need."""
        slim = copy.copy(self)
        slim.clusterer = copy.copy(self.clusterer)
        del slim.clusterer.labels_
        return pickle.dumps(slim)


@dataclass(frozen=True)
class RefreshDecision:
    mode: str  # "full" or "assign"
    reason: str
    drift: dict
    # The model's assignment (segment ids, features, clusters), if computed.
    assigned: tuple[pd.Series, np.ndarray, np.ndarray] | None = None


def _segment_ids(labels: np.ndarray, id_by_label: dict[int, int]) -> np.ndarray:
    """Cluster labels (``NOISE_LABEL`` for noise) to segment ids, vectorised. A label without an
    id (a cluster that was empty when the model was fitted) counts as unassigned."""
    labels = np.asarray(labels, dtype=np.int64)
    size = max([*id_by_label, int(labels.max(initial=0))]) + 2
    lookup = np.full(size, UNASSIGNED_SEGMENT_ID, dtype=np.int64)
    for label, segment_id in id_by_label.items():
        lookup[label + 1] = segment_id
    unmapped = set(np.unique(labels)) - set(id_by_label) - {NOISE_LABEL}
    if unmapped:
        log.warning("Cluster labels %s have no segment id: counted as unassigned", unmapped)
    return lookup[labels + 1]


# --- Reading: everything the decision needs from the warehouse ------------------------------


def base_version(con: duckdb.DuckDBPyConnection, as_of_date: date) -> dict | None:
    """The version tonight continues from (see the module docs). Versions whose member rows
    were pruned cannot be matched against."""
    versions.ensure_segments_schema(con)
    current = versions.current_version(con)
    if current and current["as_of_date"] < as_of_date and current["members_pruned_at"] is None:
        return current
    return versions.fetch_dict(
        con,
        """
        select * from segments.segment_versions
        where status in ('published', 'superseded') and members_pruned_at is null
            and (as_of_date < ? or (as_of_date = ? and not exists (
                select 1 from segments.segment_versions as older
                where older.status = 'published' and older.as_of_date < ?
                    and older.members_pruned_at is null
            )))
        order by as_of_date desc, status = 'published' desc, version_id desc
        limit 1
        """,
        [as_of_date, as_of_date, as_of_date],
    )


def _model_version_of(version: dict) -> int:
    """The version whose fitted model a version used (itself, for a full recluster)."""
    model_version = version.get("model_version_id")
    return int(version["version_id"] if model_version is None else model_version)


@dataclass(frozen=True)
class BaseVersion:
    """The version tonight continues from, as read from the warehouse: its members and names,
    and the model it used (``None`` when none is stored) with that model's stability."""

    version_id: int
    members: pd.Series  # segment id per customer id
    names: dict[int, str]
    model_version_id: int
    stored_model: SegmentModel | None = None
    model_stability: float | None = None


def later_version(con: duckdb.DuckDBPyConnection, as_of_date: date) -> BaseVersion | None:
    """The nearest published version of a later as-of date (members not pruned), without its
    model: where a backfilled date takes its segment ids from (``id_reference``)."""
    row = versions.fetch_dict(
        con,
        """
        select version_id from segments.segment_versions
        where status = 'published' and members_pruned_at is null and as_of_date > ?
        order by as_of_date, version_id desc
        limit 1
        """,
        [as_of_date],
    )
    if row is None:
        return None
    version_id = int(row["version_id"])
    return BaseVersion(
        version_id=version_id,
        members=versions.version_members(con, version_id),
        names=versions.segment_names(con, version_id),
        model_version_id=version_id,
    )


def read_base(con: duckdb.DuckDBPyConnection, as_of_date: date) -> BaseVersion | None:
    """The base version (see the module docs) with its members, names and stored model."""
    row = base_version(con, as_of_date)
    if row is None:
        return None
    version_id = int(row["version_id"])
    model_version = _model_version_of(row)
    blob = versions.load_model(con, model_version)
    stability = con.execute(
        "select stability_ari from segments.segment_versions where version_id = ?",
        [model_version],
    ).fetchone()
    return BaseVersion(
        version_id=version_id,
        members=versions.version_members(con, version_id),
        names=versions.segment_names(con, version_id),
        model_version_id=model_version,
        # Our own warehouse, written by this module.
        stored_model=None if blob is None else pickle.loads(blob),
        model_stability=None if stability is None else stability[0],
    )


# --- Deciding: a pure function from tonight's features and the base to a candidate ----------


def requested_mode(config: SegmentationConfig, mode: str | None, k: int | None) -> str:
    """The mode asked for: the argument, else the config's; a k override means a full fit."""
    requested = mode or config.refresh.mode
    if k is None:
        return requested
    if requested == "assign":
        raise ReclusterError("A k override needs a full recluster, not assign mode.")
    return "full"


def reusable_model(
    base: BaseVersion | None, as_of_date: date, config_key: str
) -> tuple[SegmentModel | None, str]:
    """The base's stored model if tonight may assign with it, and why (or why not)."""
    if base is None:
        return None, "no earlier version"
    model, model_version = base.stored_model, base.model_version_id
    if model is None:
        return None, f"version {model_version} has no stored model"
    if model.sklearn_version != sklearn.__version__:
        return None, (
            f"the model of version {model_version} was fitted with scikit-learn "
            f"{model.sklearn_version}, this is {sklearn.__version__}"
        )
    if model.fitted_as_of >= as_of_date:
        return None, f"the model of version {model_version} was not fitted on earlier data"
    if model.config_key != config_key:
        return None, (
            f"the segmentation config or the available features changed since version "
            f"{model_version} was fitted"
        )
    return model, f"model of version {model_version}"


def decide_refresh(
    config: SegmentationConfig,
    requested: str,
    as_of_date: date,
    model: SegmentModel | None,
    why_no_model: str,
    buyers: pd.DataFrame,
    base_members: pd.Series | None,
) -> RefreshDecision:
    """Full recluster or assignment to the base version's model, and why (stored with the
    version). ``auto`` refits when there is no reusable model, on the configured cadence, or
    when a feature's PSI or a segment's share drifts past its threshold; otherwise it assigns."""
    if requested == "full":
        return RefreshDecision("full", "full recluster requested", {})
    if model is None:
        if requested == "assign":
            raise ReclusterError(f"Assign mode needs a reusable model, but {why_no_model}.")
        return RefreshDecision("full", f"no reusable model ({why_no_model})", {})
    psi = feature_psi(model.drift_reference, buyers)
    worst_feature = max(psi, key=psi.get)
    assigned = model.assign(buyers)
    shares: dict[int, float] = {}
    if base_members is not None:
        # Buyers in both versions: prospects who have since ordered are not drift.
        earlier, tonight = in_both(base_members, assigned[0])
        was_buyer = earlier > 0
        shares = segment_share_change(pd.Series(earlier[was_buyer]), pd.Series(tonight[was_buyer]))
    worst_share = max(shares.values(), default=0.0)
    drift = {
        "feature_psi": {k: round(v, 6) for k, v in psi.items()},
        "segment_share_change": {str(k): v for k, v in shares.items()},
    }
    age = (as_of_date - model.fitted_as_of).days
    refresh = config.refresh
    if requested == "assign":
        return RefreshDecision("assign", "assign mode requested", drift, assigned)
    if age >= refresh.full_every_days:
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
        return RefreshDecision("assign", reason, drift, assigned)
    return RefreshDecision("full", reason, drift)


def fit_full(
    buyers: pd.DataFrame,
    config: SegmentationConfig,
    features: FeatureConfig,
    *,
    k_override: int | None = None,
):
    """Preprocess, select k, fit on everyone. Returns the fitted pieces, features and selection."""
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
        "Model selection in %.1f s: favourites %s -> k=%d (stability ARI %.3f)",
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
    by_id = profiles.set_index("segment_id")
    unassigned = by_id["share"].get(UNASSIGNED_SEGMENT_ID, 0.0)
    if unassigned > rules.max_unassigned_share:
        problems.append(
            f"{unassigned:.2%} of customers are unassigned > max_unassigned_share "
            f"{rules.max_unassigned_share:.0%}"
        )
    clustered = profiles[~profiles["segment_id"].isin(list(FIXED_SEGMENTS))]
    small = clustered[clustered["share"] < rules.min_segment_share]
    for row in small.itertuples():
        problems.append(
            f"segment {row.segment_id} holds {row.share:.2%} of customers "
            f"< min_segment_share {rules.min_segment_share:.0%}"
        )
    return problems


def id_reference(base: BaseVersion | None, later: BaseVersion | None) -> BaseVersion | None:
    """The version whose segment ids tonight's clusters inherit: the base (the nearest earlier
    published version), else the nearest later one. So a group keeps its id whatever order the
    dates run in: a backfill of an earlier date matches the later version already published."""
    return base if base is not None else later


def _lineage(segment_ids: pd.Series, reference: BaseVersion | None) -> pd.DataFrame:
    """Per segment: kept (its id matched the reference version's segment), new (no match: an id
    never used), fixed (prospects, unassigned) or retired (the reference's segment has no
    successor), with the member overlap and the reason in words."""
    rows = []
    current_ids = sorted(int(s) for s in segment_ids.unique())
    reference_ids = set(reference.names) if reference else set()
    overlap = (
        member_overlap(reference.members, segment_ids)
        if reference is not None and not reference.members.empty
        else None
    )
    where = f"version {reference.version_id}" if reference else ""
    for segment_id in current_ids:
        share = None
        if overlap is not None and segment_id in overlap.index and segment_id in overlap.columns:
            share = float(overlap.loc[segment_id, segment_id])
        if segment_id in FIXED_SEGMENTS:
            outcome, reason = "fixed", "fixed id (prospects, voided orders only or unassigned)"
        elif segment_id in reference_ids:
            outcome = "kept"
            shared = "" if share is None else f"{share:.0%} of "
            reason = f"shares {shared}its members with segment {segment_id} of {where}"
        else:
            outcome = "new"
            reason = (
                f"matches no segment of {where}: an id never used"
                if reference
                else "no other published version: ids rank by value"
            )
        rows.append(
            {
                "segment_id": segment_id,
                "outcome": outcome,
                "member_overlap": share,
                "matched_version_id": reference.version_id if reference else None,
                "reason": reason,
            }
        )
    for segment_id in sorted(reference_ids - set(current_ids) - set(FIXED_SEGMENTS)):
        rows.append(
            {
                "segment_id": segment_id,
                "outcome": "retired",
                "member_overlap": None,
                "matched_version_id": reference.version_id,
                "reason": f"no cluster shares enough members with segment {segment_id} of {where}",
            }
        )
    return pd.DataFrame(rows)


@dataclass
class _Outcome:
    """Tonight's segment ids of the customers with orders, and what produced them."""

    buyer_ids: pd.Series
    X: np.ndarray  # the preprocessed features the ids were computed from
    clusters: np.ndarray  # the clustering's labels, before the guards split any
    guard_thresholds: dict  # the guards' cut-offs the segments were split by
    features: FeatureConfig
    algorithm: str
    k: int  # the clustering's; the guards' splits add segments (scores["guards"]["splits"])
    kept_names: dict[int, str]
    scores: dict
    config: dict
    model: SegmentModel | None = None  # a new fitted model to store
    model_version_id: int | None = None  # or the version whose model was reused


def _assign_to_model(model: SegmentModel, base: BaseVersion, decision: RefreshDecision) -> _Outcome:
    buyer_ids, X, clusters = decision.assigned
    return _Outcome(
        buyer_ids=buyer_ids,
        X=X,
        clusters=clusters,
        guard_thresholds=model.guard_thresholds,
        features=model.features,
        algorithm=model.clusterer.algorithm,
        k=model.clusterer.n_clusters_,
        kept_names=base.names,
        scores={"stability_ari": base.model_stability},
        config=model.config,
        model_version_id=base.model_version_id,
    )


def _fit_new_model(
    config: SegmentationConfig,
    features: FeatureConfig,
    buyers: pd.DataFrame,
    as_of_date: date,
    reference: BaseVersion | None,
    next_segment_id: int,
    k_override: int | None,
) -> _Outcome:
    """A full fit; the clusters take the ids of the ``reference`` version's segments they share
    most members with (see ``id_reference``)."""
    preprocessor, clusterer, X, selection = fit_full(
        buyers, config, features, k_override=k_override
    )
    guarded = apply_guards(
        clusterer.labels_,
        buyers,
        config.guards,
        min_size=math.ceil(config.acceptance.min_segment_share * len(buyers)),
    )
    if guarded.splits:
        log.info("Guards split %d cluster(s): %s", len(guarded.splits), guarded.splits)
    labels = guarded.labels
    clustered = labels != NOISE_LABEL
    base_members = reference.members if reference else None
    base_names = reference.names if reference else {}
    ranked = rank_by_value(buyers[clustered], labels[clustered])
    match = match_segments(
        base_members[base_members > 0] if base_members is not None else None,
        pd.Series(labels[clustered], index=buyers.index[clustered]),
        min_member_overlap=config.matching.min_member_overlap,
        next_id=next_segment_id,
        # Without a version to continue from, ids rank by value; ids once used are never reused.
        first_ids={label: next_segment_id - 1 + rank for label, rank in ranked.items()},
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
        config_key=model_config_key(config, features),
        config=config.to_dict(),
        guards=config.guards,
        guard_thresholds=guarded.thresholds,
        guard_splits=guarded.splits,
    )
    return _Outcome(
        buyer_ids=pd.Series(_segment_ids(labels, match.segment_id_by_label), index=buyers.index),
        X=X,
        clusters=clusterer.labels_,
        guard_thresholds=guarded.thresholds,
        features=features,
        algorithm=config.algorithm.name,
        k=clusterer.n_clusters_,
        kept_names={sid: base_names[sid] for sid in match.kept if sid in base_names},
        scores={
            "stability_ari": selection.stability_ari,
            "selection": selection.to_dict(),
            "guards": guarded.to_dict(),
        },
        config=config.to_dict(),
        model=model,
    )


def _used_features(config: FeatureConfig, absent: list[str]) -> FeatureConfig:
    return FeatureConfig(
        log1p=tuple(c for c in config.log1p if c not in absent),
        numeric=tuple(c for c in config.numeric if c not in absent),
        categorical=tuple(c for c in config.categorical if c not in absent),
    )


def _buyers(frame: pd.DataFrame, as_of_date: date) -> pd.DataFrame:
    """The customers with orders, the ones clustered; there must be some."""
    if frame.empty:
        raise ReclusterError(
            f"marts.customer_features has no slice for {as_of_date}: dbt_build has not built "
            "it, or retention deleted it (docs/reclustering.md#versions). Run the date again "
            "from dbt_build (in Airflow: clear dbt_build with Downstream)."
        )
    buyers = frame[frame["has_orders"]]
    if buyers.empty:
        raise ReclusterError(
            f"No customer has an order up to {as_of_date}: there is nothing to segment "
            f"({len(frame)} customers, all prospects)."
        )
    log.info(
        "Loaded features of %d customers (%d with orders) for %s",
        len(frame),
        len(buyers),
        as_of_date,
    )
    return buyers


def _library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "duckdb": duckdb.__version__,
    }


@dataclass(frozen=True)
class ComputedVersion:
    """Tonight's version as decided, before it is stored: the candidate rows (labels, personas,
    scores, lineage, transitions, acceptance status), the reasons it is rejected (empty when it
    passes), and the newly fitted model (``None`` when tonight assigned to the base's model)."""

    candidate: versions.Candidate
    rejected_reasons: list[str]
    fitted_model: SegmentModel | None = None


def compute_candidate(
    frame: pd.DataFrame,
    as_of_date: date,
    base: BaseVersion | None,
    config: SegmentationConfig,
    *,
    mode: str | None = None,
    k: int | None = None,
    next_segment_id: int = 1,
    run_id: str = "manual",
    later: BaseVersion | None = None,
) -> ComputedVersion:
    """Decide tonight's version from the features of every customer (indexed by customer id,
    with a ``has_orders`` flag, as ``load_customer_features`` returns them) and the base version
    tonight continues from. No warehouse: ``next_segment_id`` is the lowest id never used;
    ``later`` is the nearest published version of a later as-of date, which gives a backfilled
    date its segment ids when no earlier version exists (``id_reference``)."""
    requested = requested_mode(config, mode, k)
    buyers = _buyers(frame, as_of_date)
    absent = absent_features(frame, config.features)
    if absent:
        log.warning("Features with no value tonight are left out: %s", absent)
    features = _used_features(config.features, absent)
    model, why_no_model = reusable_model(base, as_of_date, model_config_key(config, features))
    base_members = base.members if base else None
    decision = decide_refresh(
        config, requested, as_of_date, model, why_no_model, buyers, base_members
    )
    log.info("Recluster mode: %s (%s)", decision.mode, decision.reason)
    if decision.mode == "assign":
        outcome = _assign_to_model(model, base, decision)
    else:
        reference = id_reference(base, later)
        outcome = _fit_new_model(
            config, features, buyers, as_of_date, reference, next_segment_id, k
        )
    params = {
        "requested_mode": requested,
        "k_override": k,
        "features_used": list(outcome.features.all_columns),
        "features_absent": absent,
    }
    return _describe_version(
        frame,
        as_of_date,
        base,
        config,
        decision,
        outcome,
        params,
        run_id,
        id_reference(base, later),
    )


def _describe_version(
    frame: pd.DataFrame,
    as_of_date: date,
    base: BaseVersion | None,
    config: SegmentationConfig,
    decision: RefreshDecision,
    outcome: _Outcome,
    params: dict,
    run_id: str,
    reference: BaseVersion | None = None,
) -> ComputedVersion:
    """Every customer's segment (prospects and customers whose orders were all voided in
    theirs), the scores, personas, lineage and membership changes, and the acceptance verdict."""
    segment_ids = pd.Series(PROSPECT_SEGMENT_ID, index=frame.index, name="segment_id")
    if "has_only_voided_orders" in frame:
        voided = frame["has_only_voided_orders"].astype(bool) & ~frame["has_orders"]
        segment_ids[voided] = VOIDED_SEGMENT_ID
    segment_ids.loc[outcome.buyer_ids.index] = outcome.buyer_ids.to_numpy()
    # The clustering is judged on its own clusters; the guards' splits follow business rules,
    # not the geometry, and are judged by their purity (scores["guards"]).
    segments_silhouette = sampled_silhouette(
        outcome.X,
        outcome.buyer_ids.to_numpy(),
        config.selection.silhouette_sample_size,
        config.random_state,
    )
    scores = {
        **labelling_scores(
            outcome.X,
            np.asarray(outcome.clusters),
            config.selection.silhouette_sample_size,
            config.random_state,
        ),
        "segments_silhouette": segments_silhouette,
        **outcome.scores,
        "drift": decision.drift,
    }
    features = outcome.features
    numeric = tuple(c for c in features.all_columns if c not in features.categorical)
    rules = NamingRules(
        lapsed_recency_days=config.guards.lapsed_after_days,
        top_value_spend=outcome.guard_thresholds.get("top_value_spend"),
    )
    profiles, statistics = describe_segments(
        frame, segment_ids, numeric, features.log1p, kept_names=outcome.kept_names, rules=rules
    )
    problems = check_acceptance(config, scores, profiles)
    names = profiles.set_index("segment_id")["segment_name"]
    base_members = base.members if base else None
    candidate = versions.Candidate(
        as_of_date=as_of_date,
        run_id=run_id,
        algorithm=outcome.algorithm,
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
        params=params,
        status="rejected" if problems else "candidate",
        status_reason="; ".join(problems) or None,
        mode=decision.mode,
        mode_reason=decision.reason,
        model_version_id=outcome.model_version_id,
        previous_version_id=base.version_id if base else None,
        config=outcome.config,
        library_versions=_library_versions(),
        input_fingerprint=fingerprint(frame),
        feature_stats=statistics,
        lineage=_lineage(segment_ids, reference),
        transitions=transitions(base_members, segment_ids) if base else None,
        membership_changes=membership_changes(base_members, segment_ids),
        model=None if outcome.model is None else outcome.model.to_bytes(),
    )
    return ComputedVersion(candidate, problems, outcome.model)


# --- Writing, and the entry point that wires the three ---------------------------------------


def store_version(con: duckdb.DuckDBPyConnection, computed: ComputedVersion) -> int:
    """Store the version (candidate or rejected) in one transaction; returns its id."""
    candidate = computed.candidate
    version_id = versions.write_version(con, candidate)
    if computed.rejected_reasons:
        log.warning("Version %d REJECTED: %s", version_id, candidate.status_reason)
    silhouette = candidate.scores["silhouette"]
    log.info(
        "Stored %s version %d (%s): k=%d, silhouette=%s, %d customers",
        candidate.status,
        version_id,
        candidate.mode,
        candidate.k,
        None if silhouette is None else round(silhouette, 3),
        len(candidate.assignments),
    )
    return version_id


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
    requested_mode(config, mode, k)  # a contradictory request fails before anything is read
    frame = load_customer_features(con, as_of_date, config.features)
    base = read_base(con, as_of_date)
    computed = compute_candidate(
        frame,
        as_of_date,
        base,
        config,
        mode=mode,
        k=k,
        next_segment_id=versions.next_segment_id(con),
        run_id=run_id,
        later=None if base else later_version(con, as_of_date),
    )
    version_id = store_version(con, computed)
    return _result(version_id, computed)


def _result(version_id: int, computed: ComputedVersion) -> dict:
    """What the recluster reports to its caller (and the nightly step records)."""
    candidate = computed.candidate
    scores = candidate.scores
    return {
        "version_id": version_id,
        "status": candidate.status,
        "rejected_reasons": computed.rejected_reasons,
        "as_of_date": candidate.as_of_date.isoformat(),
        "mode": candidate.mode,
        "mode_reason": candidate.mode_reason,
        "k": candidate.k,
        "silhouette": scores["silhouette"],
        "davies_bouldin": scores["davies_bouldin"],
        "calinski_harabasz": scores["calinski_harabasz"],
        "stability_ari": scores.get("stability_ari"),
        "customers": len(candidate.assignments),
        "segments": candidate.profiles[["segment_id", "segment_name", "customer_count"]].to_dict(
            "records"
        ),
    }
