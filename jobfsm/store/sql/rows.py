"""Rows of the SQL store's tables turned into the store's records."""

from __future__ import annotations

import json
from typing import Any

from jobfsm.model import Outcome, RunStatus, Trigger
from jobfsm.store.abc import AuditEntry, Heartbeat, RunRecord, TriggerRequest
from jobfsm.store.control import KILL_PENDING, KillRequest, Pause


def run_record(row: Any) -> RunRecord:
    m = row._mapping
    return RunRecord(
        id=m["id"],
        job=m["job"],
        status=RunStatus(m["status"]),
        trigger=Trigger(m["trigger"]),
        node=m["node"],
        scheduled_for=m["scheduled_for"],
        attempt=m["attempt"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        exit_code=m["exit_code"],
        signal=m["signal"],
        duration_seconds=m["duration_seconds"],
        outcome=Outcome(m["outcome"]) if m["outcome"] else None,
        message=m["message"] or "",
        stdout_tail=m["stdout_tail"] or "",
        stderr_tail=m["stderr_tail"] or "",
        stdout_path=m["stdout_path"],
        stderr_path=m["stderr_path"],
        user=m["user"],
    )


def request_record(row: Any) -> TriggerRequest:
    m = row._mapping
    return TriggerRequest(
        id=m["id"], job=m["job"], user=m["user"], requested_at=m["requested_at"],
        claimed_by=m["claimed_by"], claimed_at=m["claimed_at"], run_id=m["run_id"],
    )


def audit_record(row: Any) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        id=m["id"], time=m["time"], user=m["user"], action=m["action"], job=m["job"],
        outcome=m["outcome"], details=json.loads(m["details"] or "{}"),
    )


def heartbeat_record(row: Any) -> Heartbeat:
    m = row._mapping
    return Heartbeat(node=m["node"], pid=m["pid"], host=m["host"], started_at=m["started_at"],
                     last_seen=m["last_seen"])


def pause_record(row: Any) -> Pause:
    m = row._mapping
    return Pause(job=m["job"], user=m["user"], since=m["since"], until=m["until"], reason=m["reason"] or "")


def kill_record(row: Any) -> KillRequest:
    m = row._mapping
    return KillRequest(
        id=m["id"], job=m["job"], run_id=m["run_id"], node=m["node"], user=m["user"],
        requested_at=m["requested_at"], claimed_at=m["claimed_at"], result=m["result"] or KILL_PENDING,
    )
