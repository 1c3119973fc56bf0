"""What the daemon adds for its operators: notifications and metrics, as listeners of the
lifecycle's events (the scheduler does not know they exist). Built before the scheduler so that
they hear what its start-up announces (lost runs, fires missed while the daemon was down)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobfsm.clock import Clock
from jobfsm.lifecycle.events import Announcer, Event
from jobfsm.model import JobConfig, JobState
from jobfsm.notify.dispatcher import Dispatcher
from jobfsm.notify.notifier import Notifier
from jobfsm.notify.settings import NotifySettings
from jobfsm.store.abc import HEARTBEAT_MAX_AGE_SECONDS

if TYPE_CHECKING:
    from jobfsm.daemon.scheduler import Scheduler
    from jobfsm.joblog import JobLogger
    from jobfsm.metrics import Metrics
    from jobfsm.store import Store


@dataclass(frozen=True, slots=True)
class OperationsOptions:
    notify: NotifySettings = field(default_factory=NotifySettings)
    metrics: tuple[str, int] | None = None
    """``--metrics HOST:PORT``: serve ``/metrics`` there (None: no metrics)."""


class Operations:
    def __init__(self, options: OperationsOptions, *, store: Store, logger: JobLogger, clock: Clock,
                 node: str, jobs_dir: Path, events: Announcer) -> None:
        self.options = options
        self.jobs_dir = jobs_dir
        self._scheduler: Scheduler | None = None
        settings = options.notify
        self.dispatcher = Dispatcher(lambda m: logger.error(m, component="notify"),
                                     attempts=settings.attempts, backoff_seconds=settings.backoff_seconds)
        failing: set[str] = set()
        with contextlib.suppress(Exception):  # a failing store: no streak is known to go on
            failing = {n for n, s in store.all_states().items() if s is JobState.FAILED}
        self.notifier = Notifier(settings, self.dispatcher, clock=clock, node=node, config=self._config,
                                 store=store, failing=failing)
        events.subscribe(_guarded(self.notifier.on_event, logger))
        self.metrics: Metrics | None = None
        self._server: Any = None
        if options.metrics is not None:
            from jobfsm.metrics import Metrics

            self.metrics = Metrics(
                clock=clock, states=self._states,
                nodes=lambda: store.live_nodes(now=clock.now(), max_age_seconds=HEARTBEAT_MAX_AGE_SECONDS),
                notifications=self._notifications,
            )
            events.subscribe(_guarded(self.metrics.on_event, logger))
            host, port = options.metrics
            try:
                self._server = self.metrics.serve(host, port)
            except OSError as exc:
                self.dispatcher.close(0)
                raise OSError(f"--metrics {host}:{port}: cannot listen there ({exc.strerror or exc}); "
                              "pick another address or port") from None
            logger.info(f"metrics at http://{host}:{self._server.server_port}/metrics", component="metrics")

    def attach(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def started(self) -> None:
        """The scheduler's start-up is done (every job loaded)."""
        self.notifier.started()

    @property
    def metrics_port(self) -> int | None:
        return None if self._server is None else int(self._server.server_port)

    def _config(self, name: str) -> JobConfig | None:
        scheduler = self._scheduler
        entry = scheduler.jobs.get(name) if scheduler is not None else None
        return entry.config if entry is not None else None

    def _notifications(self) -> dict[str, int]:
        d = self.dispatcher
        return {"delivered": d.delivered, "failed": d.failed, "dropped": d.dropped}

    def _states(self) -> list[JobState]:
        scheduler = self._scheduler
        if scheduler is None:
            return []
        return [entry.model.job_state for entry in list(scheduler.jobs.values())]

    def close(self) -> None:
        """After the scheduler stopped: deliver what waits (a few seconds at most), stop serving."""
        self.dispatcher.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _guarded(listener: Callable[[Event], None], logger: JobLogger) -> Callable[[Event], None]:
    """A listener whose bug is logged, never raised into the loop that announced the event."""

    def guarded(event: Event) -> None:
        try:
            listener(event)
        except Exception as exc:
            logger.error(f"{type(exc).__name__} in a listener of {type(event).__name__}: {exc}", component="notify")

    return guarded
