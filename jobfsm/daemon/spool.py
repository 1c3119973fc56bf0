"""Results the store could not take when the daemon stopped, kept in a file of the logs folder
(JSON lines) and recorded by the next start before it marks anything lost: those runs did end,
and this is how."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from jobfsm.daemon.finish import REFUSED_NOTE, finish_of, without_texts
from jobfsm.errors import StoreValueError
from jobfsm.joblog import JobLogger
from jobfsm.model import Outcome
from jobfsm.runs.executor import JobResult
from jobfsm.store import Finish, Store

SPOOL_FILE = "unrecorded-results.jsonl"
"""Results the store could not take before the daemon stopped: recorded at the next start."""


def write(path: Path, results: list[tuple[int, JobResult]], logger: JobLogger) -> None:
    with open(path, "a", encoding="utf-8") as out:
        for run_id, result in results:
            fields = asdict(finish_of(result))
            del fields["run_id"]
            fields["outcome"] = fields["outcome"].value
            fields["ended_at"] = fields["ended_at"].isoformat()
            out.write(json.dumps({"run_id": run_id, "job": result.job_name, "fields": fields}) + "\n")
        out.flush()
        os.fsync(out.fileno())
    logger.error(f"the store is still unavailable: {len(results)} result(s) kept in {path}; the next start records them")


def replay(path: Path, store: Store, logger: JobLogger) -> None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return
    finishes = []
    for line in lines:
        try:
            item = json.loads(line)
            fields = item["fields"]
            fields["outcome"] = Outcome(fields["outcome"])
            fields["ended_at"] = datetime.fromisoformat(fields["ended_at"])
            finishes.append(Finish(int(item["run_id"]), **fields))
        except (ValueError, KeyError, TypeError) as exc:
            logger.error(f"{path}: skipping an unreadable line ({exc}): {line[:200]}")
    for finish in finishes:  # one by one: a run pruned meanwhile must not stop the rest
        try:
            try:
                store.finish_run(finish)
            except StoreValueError as exc:
                logger.error(f"{path}: run {finish.run_id}: {exc}; {REFUSED_NOTE}", component="store")
                store.finish_run(without_texts(finish))
        except LookupError:
            logger.error(f"{path}: run {finish.run_id} is no longer in the store; its result is not recorded")
    path.unlink()
    logger.info(f"recorded {len(finishes)} result(s) kept in {path} when the daemon last stopped with the store unavailable")
