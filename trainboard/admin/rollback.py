"""The champion's records mended by hand: ``trainboard champion rollback`` (an earlier champion made the
champion again, recorded like a promotion) and ``trainboard champion repair`` (champion.json rebuilt
from the history, damaged history entries moved aside). Both go through the same compare-and-swap as
promote, and both are safe to run again after a kill. TensorFlow-free."""

from __future__ import annotations

import logging

from trainboard import layout, storage
from trainboard.artifacts.champion import (
    ChampionRecord,
    ChampionRecordError,
    IncompleteModel,
    history_entry,
    matches_manifest,
    parse_record,
    read_champion,
    read_history,
    read_manifest,
    record_history,
    who,
    write_champion,
)
from trainboard.artifacts.champion_model import MAX_ATTEMPTS, now, sync_champion_model
from trainboard.checks import check_run_name, check_visible
from trainboard.errors import UsageError
from trainboard.invocation import command
from trainboard.roots import check_root

log = logging.getLogger(__name__)
DAMAGED_HISTORY = "champion-history-damaged"  # where repair moves history entries it cannot read


def rollback(root: str, to: str, reason: str = "") -> ChampionRecord:
    """Make run ``to``'s model (``<root>/models/<to>/``, whole by its manifest) the champion again, with its
    metrics of its last promotion: a recorded promotion (action rollback), by the same compare-and-swap
    as promote; then ``models/champion/`` is copied from it."""
    root = check_root(root, will_write=True)  # a read-only root: refused before anything is read
    check_run_name(to, "to")
    check_visible("reason", reason)  # it goes into the history and every listing of it
    promotions = [r for r in read_history(root) if r.run == to]
    if not promotions:
        history = command("champion history")
        raise UsageError("to", f"run {to!r} was never champion of {root} (see `{history}`)")
    model = layout.model_dir(root, to)  # this root's copy, also when an old record names another place
    manifest = read_manifest(model)  # None: promoted before manifests; its files are taken as they are
    if not (matches_manifest(model, manifest, digests=True) if manifest else storage.list_files(model)):
        raise UsageError(
            "to", f"{model} is missing or not whole (no matching manifest): cannot roll back to it"
        )
    for _ in range(MAX_ATTEMPTS):
        champion, generation = read_champion(root)
        if champion is not None and champion.run == to:
            # A rollback killed while it copied: the record is written, the serving copy maybe torn.
            serving = layout.champion_model_dir(root)
            if matches_manifest(serving, read_manifest(serving)):
                raise UsageError("to", f"run {to!r} is the champion already; {serving}/ is whole")
            sync_champion_model(root)
            return champion
        record = ChampionRecord(
            run=to,
            model_uri=layout.model_path(to),
            metrics=promotions[-1].metrics,
            promoted_at=now(),
            reason=f"rollback from {champion.run if champion else 'none'}"
            + (f": {reason}" if reason else ""),
            previous=champion.run if champion else "",
            by=who(),
            action="rollback",
        )
        try:
            write_champion(root, record, generation)
        except storage.PreconditionFailed:
            log.info("another run changed the champion record during the rollback; trying again")
            continue
        record_history(root, record)
        sync_champion_model(root)
        return record
    raise RuntimeError(f"{layout.champion_record(root)} changed {MAX_ATTEMPTS} times during the rollback")


def _whole(root: str, run: str) -> bool:
    model = layout.model_dir(root, run)
    return matches_manifest(model, read_manifest(model), digests=True)


def repair(root: str) -> list[str]:
    """Mend what a crash or a hand edit damaged, saying what was done (nothing: []): every history entry
    that is not a record moved to ``<root>/champion-history-damaged/`` (kept, not deleted); a
    champion.json that is missing or not a record written again from the newest history entry whose model
    is whole (a damaged one removed when there is none); then ``models/champion/`` copied from the
    record's model where it is not that model, whole."""
    root = check_root(root, will_write=True)  # a read-only root: refused before anything is moved
    done = _move_damaged_history(root) + _rebuild_record(root)
    serving = layout.champion_model_dir(root)
    before = read_manifest(serving)
    whole = matches_manifest(serving, before)
    try:
        sync_champion_model(root)
    except IncompleteModel as e:
        raise UsageError("root", f"{e}; roll back to a champion whose model is whole") from None
    after = read_manifest(serving)
    if after is not None and not (whole and after == before):
        done.append(
            f"copied the champion's model ({after['run']}, {len(after['files'])} files) to {serving}/"
        )
    return done


def _is_record(data: bytes, uri: str) -> bool:
    try:
        parse_record(data, uri)
    except ChampionRecordError:
        return False
    return True


def _move_damaged_history(root: str) -> list[str]:
    done = []
    for uri in storage.list_files(layout.champion_history_dir(root)):
        # Not .json: a local root's lock files.
        if uri.endswith(".json") and not _is_record(storage.read_bytes(uri), uri):
            aside = storage.join(root, DAMAGED_HISTORY, uri.rsplit("/", 1)[-1])
            storage.copy_file(uri, aside)
            storage.delete(uri)
            done.append(f"moved the damaged history entry {uri} to {aside}")
    return done


def _rebuild_record(root: str) -> list[str]:
    """champion.json written again from the history when it is missing or damaged. A missing one with a
    history is a loss, not "no champion": without it the next run would be judged against none."""
    record_uri = layout.champion_record(root)
    data, generation = storage.read_versioned(record_uri)  # read once: the write below is at this version
    if data is not None and _is_record(data, record_uri):
        return []
    history = read_history(root)
    good = [r for r in history if _whole(root, r.run)]
    what = "missing" if data is None else "damaged"
    if good:
        entry = history_entry(root, good[-1])
        storage.write_if_generation(record_uri, storage.read_bytes(entry), generation)
        skipped = [r.run for r in history[history.index(good[-1]) + 1 :]]
        newer = f"; the newer entries' models are not whole: {', '.join(skipped)}" if skipped else ""
        champion = f"champion {good[-1].run} (it was {what}; from {entry}){newer}"
        return [f"wrote {record_uri} again from the history: {champion}"]
    if data is None:
        return []  # no history entry names a whole model either: no champion, as before
    storage.delete(record_uri)
    return [f"removed {record_uri}: no history entry names a whole model (no champion now)"]
