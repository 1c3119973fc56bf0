"""One notification, and the webhook body it becomes."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobfsm.model import NotifyEvent

SIGNATURE_HEADER = "X-Jobfsm-Signature"
OUTPUT_TAIL_LINES = 20
"""Lines of each output stream an e-mail shows."""


@dataclass(frozen=True, slots=True)
class Notice:
    event: NotifyEvent
    job: str
    at: datetime
    message: str
    """One line a person reads: what happened, the exit code, how many fires and when."""
    node: str
    run: dict[str, Any] | None = None
    """The run as ``jobfsm history --format json`` prints it (``RunRecord.to_dict``), or None."""
    stdout_tail: str = ""
    stderr_tail: str = ""

    def body(self) -> bytes:
        """The webhook's POST body: one JSON object."""
        return json.dumps({
            "event": self.event.value, "job": self.job, "at": self.at.isoformat(),
            "message": self.message, "node": self.node, "run": self.run,
        }, ensure_ascii=False).encode()

    @property
    def subject(self) -> str:
        return f"[jobfsm] {self.job}: {self.event.value.replace('_', ' ')}"

    def text(self) -> str:
        """The e-mail body: the message, the run, the tail of its output."""
        lines = [self.message, "", f"job:   {self.job}", f"event: {self.event.value}",
                 f"at:    {self.at.isoformat()}", f"node:  {self.node}"]
        run = self.run or {}
        for key in ("id", "status", "outcome", "exit_code", "signal", "trigger", "scheduled_for",
                    "started_at", "ended_at", "duration_seconds"):
            if run.get(key) is not None:
                lines.append(f"run {key}: {run[key]}")
        for stream, text in (("stdout", self.stdout_tail), ("stderr", self.stderr_tail)):
            tail = tail_lines(text, OUTPUT_TAIL_LINES)
            if tail:
                lines += ["", f"--- {stream} (last {OUTPUT_TAIL_LINES} lines) ---", tail]
        return "\n".join(lines) + "\n"


def last_line(*texts: str, limit: int = 200) -> str:
    """The last non-blank line of the first text that has one, shortened, for a message."""
    for text in texts:
        for line in reversed(text.splitlines()):
            if line.strip():
                line = line.strip()
                return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def tail_lines(text: str, n: int) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-n:])


def signature(secret: bytes, body: bytes) -> str:
    """The ``X-Jobfsm-Signature`` header's value: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
