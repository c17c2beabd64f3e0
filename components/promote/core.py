"""promote: the champion / challenger gate of scheduled retraining.

``<root>/champion.json`` records the current champion (run, model URI, metrics, time). A new model is
promoted when its test accuracy reaches ``min_accuracy`` and beats the champion's by more than 0 and by at
least ``min_improvement`` (an equal accuracy keeps the champion: no redeploy for no gain); the first model
needs only ``min_accuracy``; ``min_significance`` (in (0, 1)) also asks McNemar's exact test on the
two models' per-example correctness on the same test split for a p-value at most it; ``force_promote``
overrides them all. The record changes by compare-and-swap
(a generation precondition on GCS), so of two runs finishing at once one wins and the other reads the new
record and decides again. TensorFlow-free: it runs on the evaluation's JSON and copies files.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

from trainboard import layout, storage
from trainboard.artifacts.champion import (
    ChampionRecord,
    IncompleteModel,
    ModelExists,
    local_manifest,
    publish_model,
    read_champion,
    read_history,
    read_manifest,
    record_history,
    who,
    write_champion,
)
from trainboard.artifacts.champion_model import MAX_ATTEMPTS, now, sync_champion_model
from trainboard.artifacts.evaluation import Evaluation
from trainboard.artifacts.model import model_metadata
from trainboard.artifacts.outcome import NOT_PROMOTED, PROMOTED, STOPPED_EARLY, RunOutcome, write_outcome
from trainboard.artifacts.race_stop import RaceStop, stopped_reason
from trainboard.checks import check_run_name
from trainboard.components.promote.trend import TrendIndexError, record_trend
from trainboard.config import PromotionRule
from trainboard.config_checks import check_promotion_rule
from trainboard.mlflow_log import MlflowLog, tag_run
from trainboard.model_registry import register_promoted
from trainboard.roots import check_root
from trainboard.serving_rollout import roll_out_champion

log = logging.getLogger(__name__)
# Accuracies are ratios of counts; compare them with a tolerance so 0.9 - 0.8 counts as an improvement of 0.1.
_TOLERANCE = 1e-9


@dataclass
class Decision:
    promoted: bool
    reason: str
    forced: bool
    champion: str  # the champion's run after this decision ("" when there is none)
    previous: ChampionRecord | None  # the champion this run was measured against
    p_value: float | None = None  # McNemar's exact test against the champion, where it could be counted
    registry: str = ""  # why the Model Registry did not take the promotion (one line); "": it did, or none


def mcnemar_p_value(only_this_right: int, only_champion_right: int) -> float:
    """McNemar's exact test (two-sided): under "both models are as good", each of the n examples on which
    they disagree goes either way with probability 1/2; the p-value is twice the binomial tail of the
    smaller count, at most 1. No disagreement: 1."""
    n = only_this_right + only_champion_right
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_this_right, only_champion_right) + 1))
    return min(1.0, 2 * tail / 2**n)


def decide(
    champion: ChampionRecord | None,
    run: str,
    accuracy: float,
    rule: PromotionRule,
    *,
    champion_accuracy: float | None = None,
    p_value: float | None = None,
    chance: float = 0.0,
    stopped: str = "",
) -> Decision:
    """The gate, a pure function of the current champion, this run's test accuracy and the rule.
    ``champion_accuracy``: the champion measured on this run's test split, compared instead of its
    recorded accuracy when given; ``p_value``: McNemar's test of the two on that split, when counted;
    ``chance``: what a model that knows nothing scores on that split (Evaluation.chance_accuracy), never
    enough to be promoted, not even as the first model; ``stopped``: why the race stopped the run early
    (such a run is a result, never a champion)."""

    def verdict(promoted: bool, reason: str, forced: bool = False) -> Decision:
        new_champion = run if promoted else (champion.run if champion else "")
        return Decision(promoted, reason, forced, new_champion, champion, p_value)

    if champion is not None and champion.run == run:
        # A retried task whose earlier attempt already won: the same decision, not a comparison with itself.
        return verdict(
            True, f"run {run} is already the champion (an earlier attempt of this task promoted it)"
        )
    if rule.force_promote:
        return verdict(True, f"forced (force_promote); test accuracy {accuracy:.4f}", forced=True)
    if short := _short_of_any_promotion(accuracy, rule, chance=chance, stopped=stopped):
        return verdict(False, short)
    if champion is None:
        return verdict(
            True,
            f"first model: no champion yet, and test accuracy {accuracy:.4f} meets "
            f"min_accuracy {rule.min_accuracy:.4f}",
        )
    return verdict(
        *_against_champion(champion, accuracy, rule, champion_accuracy=champion_accuracy, p_value=p_value)
    )


def _short_of_any_promotion(accuracy: float, rule: PromotionRule, *, chance: float, stopped: str) -> str:
    """Why the run cannot be promoted at all, not even as the first model ("" when it may be): stopped
    early by the race, no better than chance, or below min_accuracy."""
    if stopped:
        return f"stopped early: {stopped}"
    if accuracy <= chance + _TOLERANCE:
        return (
            f"test accuracy {accuracy:.4f} is no better than chance ({chance:.4f}: guessing, or always "
            "answering the most frequent class)"
        )
    if accuracy < rule.min_accuracy - _TOLERANCE:
        return f"test accuracy {accuracy:.4f} is below min_accuracy {rule.min_accuracy:.4f}"
    return ""


def _against_champion(
    champion: ChampionRecord,
    accuracy: float,
    rule: PromotionRule,
    *,
    champion_accuracy: float | None,
    p_value: float | None,
) -> tuple[bool, str]:
    """(promoted, why) against the champion: better by more than 0 and by min_improvement, and, with
    min_significance, significantly (``champion_accuracy``, ``p_value``: as decide takes them)."""
    measured = champion.accuracy if champion_accuracy is None else champion_accuracy
    improvement = accuracy - measured
    against = f"test accuracy {accuracy:.4f} vs champion {champion.run}'s {measured:.4f}"
    if champion_accuracy is not None:
        against += f" on this run's test split (recorded {champion.accuracy:.4f})"
    if improvement <= _TOLERANCE:
        return False, f"{against}: {'equal' if improvement >= -_TOLERANCE else 'worse'}, not better"
    if improvement < rule.min_improvement - _TOLERANCE:
        return (
            False,
            f"{against}: better by {improvement:.4f}, less than min_improvement {rule.min_improvement:.4f}",
        )
    better = f"{against}: better by {improvement:.4f} (min_improvement {rule.min_improvement:.4f})"
    return _significantly(better, rule, p_value)


def _significantly(better: str, rule: PromotionRule, p_value: float | None) -> tuple[bool, str]:
    """(promoted, why) of a run ``better`` than the champion, when min_significance asks McNemar's test
    for a p-value at most it (off: promoted)."""
    if not 0 < rule.min_significance < 1:
        return True, better
    if p_value is None:
        return (
            False,
            f"{better}, but min_significance {rule.min_significance:g} needs the champion measured on "
            "this run's test split, and it was not (other classes, or another run promoted meanwhile); "
            "force_promote overrides",
        )
    if p_value > rule.min_significance:
        return (
            False,
            f"{better}, but not significant: McNemar p = {p_value:.4g} > min_significance "
            f"{rule.min_significance:g}",
        )
    return True, f"{better}, significant: McNemar p = {p_value:.4g} <= {rule.min_significance:g}"


def promote(
    root: str,
    run: str,
    model_dir: str,
    metrics: Evaluation,
    *,
    rule: PromotionRule,
    links: tuple[str, str] = ("", ""),
) -> Decision:
    """Decide, and when promoted: copy the model to ``<root>/models/<run>/``, point the record at it (a
    compare-and-swap, decided again after each lost race), then refresh ``<root>/models/champion/`` and
    register it in the Model Registry (``links``: the KFP job id and the team TensorBoard's URL)."""
    root = check_root(root)
    check_run_name(run)
    check_promotion_rule(rule)
    mlflow = MlflowLog.from_environment(run)  # connects while the gate decides
    model = model_metadata(model_dir)  # what train recorded: throughput, and a stop by the race
    stop = RaceStop.from_json(model.get("stopped"))
    decision, copied = _decide_and_record(
        root, run, model_dir, metrics=metrics, rule=rule, stopped=stopped_reason(stop)
    )
    _sync_champion_copy(root, decision)
    if decision.promoted:  # with manifests/components/serving on: the InferenceService to the new export
        roll_out_champion(root)
    if not decision.promoted and copied:
        # Lost the race to a better or equal model: models/ keeps promoted runs only (no record names it).
        storage.delete_folder(layout.model_dir(root, run))
    decision = _as_recorded(root, run, model_dir, decision)
    if decision.promoted:  # where model_registry is set; bounded, a failure is one line of the report
        decision.registry = register_promoted(
            root, run, rule, links, model=model, accuracy=metrics.accuracy, previous=decision.previous
        )
    trend(root, run, metrics, decision, model=model)
    outcome = PROMOTED if decision.promoted else STOPPED_EARLY if stop else NOT_PROMOTED
    stopped = stop.to_json() if stop else {}
    result = RunOutcome(run, outcome, decision.reason, metrics.headline(), decision.champion, stopped)
    write_outcome(root, replace(result, registry=decision.registry))
    tags = {"trainboard.decision": outcome, "trainboard.reason": decision.reason}
    tag_run(mlflow, {**tags, "trainboard.champion": decision.champion}, finish=True)
    return decision


def _decide_and_record(
    root: str, run: str, model_dir: str, *, metrics: Evaluation, rule: PromotionRule, stopped: str
) -> tuple[Decision, bool]:
    """The decision against the champion of the moment and, when promoted, the model published and the
    record pointed at it (a compare-and-swap: decided again after each lost race, MAX_ATTEMPTS times at
    most); and whether this call published the model (``stopped``: decide's)."""
    record_uri = layout.champion_record(root)
    copied = False
    for _ in range(MAX_ATTEMPTS):
        champion, generation = read_champion(root)  # a corrupt record stops here, before any write
        champion_accuracy, p_value = _rescored(metrics, champion)
        decision = decide(
            champion,
            run,
            metrics.accuracy,
            rule,
            champion_accuracy=champion_accuracy,
            p_value=p_value,
            chance=metrics.chance_accuracy,
            stopped=stopped,
        )
        if not decision.promoted or (champion is not None and champion.run == run):
            return decision, copied
        if not copied:  # the model is in place, whole and checked, before any record can point at it
            try:
                publish_model(model_dir, layout.model_dir(root, run), run)
            except ModelExists as e:
                return Decision(False, str(e), False, champion.run if champion else "", champion), copied
            copied = True
        record = _champion_record(run, metrics, decision, champion)
        try:
            write_champion(root, record, generation)
            record_history(root, record)
            return decision, copied
        except storage.PreconditionFailed:
            log.info("another run changed %s while run %s decided; deciding again", record_uri, run)
    raise RuntimeError(f"{record_uri} changed {MAX_ATTEMPTS} times while run {run} tried to promote")


def _rescored(metrics: Evaluation, champion: ChampionRecord | None) -> tuple[float | None, float | None]:
    """The champion's accuracy on this run's test split and McNemar's p-value of the two, where evaluate
    measured this very champion (another run may have been promoted since) and counted them."""
    rescored = metrics.champion_rescored
    if rescored is None or champion is None or rescored.run != champion.run:
        return None, None
    this, theirs = rescored.only_this_right, rescored.only_champion_right
    p_value = mcnemar_p_value(this, theirs) if this is not None and theirs is not None else None
    return rescored.accuracy, p_value


def _champion_record(
    run: str, metrics: Evaluation, decision: Decision, champion: ChampionRecord | None
) -> ChampionRecord:
    """The champion record that names this run, promoted by ``decision`` over ``champion``."""
    return ChampionRecord(
        run=run,
        model_uri=layout.model_path(run),
        metrics=metrics.headline(),
        promoted_at=now(),
        reason=decision.reason,
        previous=champion.run if champion else "",
        by=who(),
        action="force" if decision.forced else "promote",
        p_value=decision.p_value,
    )


def _sync_champion_copy(root: str, decision: Decision) -> None:
    """Refresh ``models/champion/`` after a promotion; after a kept champion, repair its copy (and
    history entry) if a killed promotion left them: a champion whose model is gone is logged (evaluate
    said so, a rollback or a force mends it)."""
    if decision.promoted:
        sync_champion_model(root)
        return
    try:
        sync_champion_model(root)
    except IncompleteModel as e:
        log.warning("%s", e)


def _as_recorded(root: str, run: str, model_dir: str, decision: Decision) -> Decision:
    """The decision as the records now say it: "promoted" only when the champion record (or, once a
    better run replaced it, the history) names this run and ``models/<run>/`` holds this very model (the
    same files as ``model_dir``), never assumed from the gate alone."""
    if not decision.promoted:
        return decision
    record, _ = read_champion(root)
    named = (record is not None and record.run == run) or any(e.run == run for e in read_history(root))
    if named and read_manifest(layout.model_dir(root, run)) == local_manifest(model_dir, run):
        return decision
    reason = (
        f"run {run} was promoted earlier with the model of another training under that name, not this one; "
        "a promoted model is never replaced: train under another run name"
        if named
        else f"the champion record names {record.run if record else 'no run'}, not {run}"
    )
    return Decision(False, reason, False, record.run if record else "", decision.previous)


def trend(root: str, run: str, metrics: Evaluation, decision: Decision, *, model: dict) -> None:
    """This run's point in the board's trend (trend.py): its test metrics, throughput and the training
    time the race saved (``model``: the model's metadata), and the champion's after the decision. A
    damaged trend index is logged, the promotion stands."""
    champion: dict[str, float] | None
    if decision.champion == run:
        champion = metrics.headline()
    else:
        champion = decision.previous.metrics if decision.previous else None
    verdict = "promoted" if decision.promoted else "not promoted"
    images_per_second = model.get("images_per_second") or 0.0
    stop = RaceStop.from_json(model.get("stopped"))
    seconds_saved = stop.seconds_saved if stop and stop.seconds_saved is not None else 0.0
    about = f"{run}: {verdict}: {decision.reason}"
    try:
        record_trend(
            root,
            run,
            metrics.headline(),
            images_per_second=images_per_second,
            champion=champion,
            about=about,
            seconds_saved=seconds_saved,
        )
    except TrendIndexError as e:
        log.warning("%s; run %s is not in the trend", e, run)
