"""The full output of a job's runs as a download, streamed from the run output files.

The log view shows what the store keeps of each run (the head and tail of its output); the
link beside it leads here, to a plain FastAPI route that reads each output file in chunks, so
neither the server nor the browser ever holds a 2 MB output (or twenty) in memory, and nothing
is written to disk for it (a Gradio download would first copy a file into Gradio's cache).

The route sits outside Gradio, so it checks the caller itself: ``user_of(request)`` must name a
signed-in user (any role: viewers may read logs, as in the page). The standalone app adds it
with :func:`add_output_route`; a host app that embeds the section adds it to its own FastAPI app
with its own ``user_of``. Imports no Gradio.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from jobfsm.admin.views import run_heading
from jobfsm.errors import JobfsmError, JobNotFoundError
from jobfsm.store.abc import RunRecord

__all__ = ["CHUNK_BYTES", "OUTPUT_PATH", "OUTPUT_RUNS", "add_output_route", "output_url", "stream_output"]

OUTPUT_PATH = "/jobfsm/output"
OUTPUT_RUNS = 20
"""The download holds the output of the same runs as the log view: the newest 20."""
CHUNK_BYTES = 64 * 1024


def output_url(name: str, status: str | None = None) -> str:
    """The download link of a job's output (the runs with ``status``, or all)."""
    query = f"?{urlencode({'status': status})}" if status else ""
    return f"{OUTPUT_PATH}/{quote(name, safe='')}.txt{query}"


def stream_output(runs: Iterable[RunRecord]) -> Iterator[bytes]:
    """Each run's heading, then its stdout and stderr from their files (the stored tail when a
    file is gone), in chunks."""
    first = True
    for run in runs:
        yield (b"" if first else b"\n") + run_heading(run).encode("utf-8") + b"\n"
        first = False
        for label, path, tail in (("stdout", run.stdout_path, run.stdout_tail), ("stderr", run.stderr_path, run.stderr_tail)):
            yield from _stream_file(label, path, tail)
        if run.message:
            yield f"--- note: {run.message}\n".encode()


def _stream_file(label: str, path: str | None, tail: str) -> Iterator[bytes]:
    handle = None
    if path:
        try:
            handle = open(path, "rb")  # noqa: SIM115 (closed below, also when the client goes)
        except OSError:
            handle = None
    if handle is None:
        if tail:
            yield f"--- {label} (what the store kept; the file is gone)\n".encode()
            yield tail.encode("utf-8") + (b"" if tail.endswith("\n") else b"\n")
        return
    try:
        chunk = handle.read(CHUNK_BYTES)
        if not chunk:
            return
        yield f"--- {label}\n".encode()
        last = b""
        while chunk:
            yield chunk
            last = chunk
            chunk = handle.read(CHUNK_BYTES)
        if not last.endswith(b"\n"):
            yield b"\n"
    finally:
        handle.close()


def add_output_route(app: Any, service: Any, user_of: Callable[[Any], str | None]) -> None:
    """Add ``GET /jobfsm/output/<job>.txt[?status=…]`` to the FastAPI ``app`` (before Gradio is
    mounted at ``/``, so that this route answers first)."""
    @app.get(OUTPUT_PATH + "/{name}.txt", include_in_schema=False)
    def download_output(request: Request, name: str, status: str = "") -> Response:
        if not user_of(request):
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        try:
            runs = service.get_job_history(name, status=status or None, limit=OUTPUT_RUNS)
        except JobNotFoundError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        except JobfsmError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        filename = quote(f"{name}-output.txt", safe="")
        return StreamingResponse(
            stream_output(runs),
            media_type="text/plain; charset=utf-8",
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
                "Cache-Control": "no-store",
            },
        )
