"""Generate a realistic estate of job files for the benchmarks.

Expressions are drawn with repeats, as in a real estate of jobs (a few schedules are very common,
many are used once), from a fixed seed so runs are comparable.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

COMMON = ["*/5 * * * *", "*/15 * * * *", "0 * * * *", "30 2 * * *", "0 9 * * mon-fri", "@daily", "@hourly"]
ZONES = ["UTC", "UTC", "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]


def expression(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return rng.choice(COMMON)
    minute, hour = rng.randrange(60), rng.randrange(24)
    return rng.choice(
        [
            f"{minute} {hour} * * *",
            f"{minute} */{rng.choice([2, 3, 4, 6])} * * *",
            f"{minute} {hour} {rng.randrange(1, 29)} * *",
            f"{minute} {hour} * * {rng.choice(['mon', 'tue-thu', 'sat,sun', '1-5'])}",
            f"{minute} {hour} 1 {rng.choice(['jan', '*/3', 'jan,jul'])} *",
        ]
    )


def generate(folder: Path, count: int, *, seed: int = 7, schedule: str | None = None) -> list[Path]:
    """Write ``count`` valid, enabled job files into ``folder``; return their paths."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        name = f"job-{i:05d}"
        doc = {
            "$schema": "../schemas/job.schema.json",
            "name": name,
            "description": f"generated job {i}",
            "schedule": schedule or expression(rng),
            "timezone": rng.choice(ZONES),
            "command": "true" if rng.random() < 0.5 else ["/bin/true"],
            "working_directory": "/tmp",
            "enabled": True,
            "timeout_seconds": rng.choice([60, 300, 3600]),
            "env": {"LANG": "C.UTF-8"} if rng.random() < 0.3 else {},
            "overlap": rng.choice(["skip", "skip", "queue", "allow"]),
        }
        path = folder / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2))
        paths.append(path)
    return paths
