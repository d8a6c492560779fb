"""Progress of long steps: a bar on a terminal, one line per stage otherwise (logs, pipes, CI).

One home for how the CLI shows work in progress, so simulate, publish, build and the demo look
alike. Output goes to stderr: stdout stays the command's result (``--json`` summaries, tables).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stages:
    """Stages of one step; ``stage(name)`` starts the next one, ``advance(n)`` counts within it."""

    title: str
    total: int | None = None
    interactive: bool = False
    _progress: object | None = None
    _task: object | None = None
    _started: float = field(default_factory=time.monotonic)
    _stage: str | None = None

    def stage(self, name: str, total: int | None = None) -> None:
        self._end_stage()
        self._stage = name
        if self._progress is not None:
            self._progress.update(self._task, description=f"{self.title}: {name}", total=total, completed=0)
        else:
            print(f"{self.title}: {name} ...", file=sys.stderr, flush=True)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def _end_stage(self) -> None:
        self._stage = None

    def show_on(self, progress: Any) -> None:
        """Draw this step's stages as a task of a rich ``Progress`` bar."""
        self._progress, self._task = progress, progress.add_task(self.title, total=None)

    def close(self) -> None:
        """Plain output ends with the step's time (a bar shows it all along)."""
        if self._progress is None and self._stage is not None:
            print(f"{self.title}: done in {time.monotonic() - self._started:.1f}s", file=sys.stderr, flush=True)
        self._end_stage()


@contextmanager
def stages(title: str, quiet: bool = False) -> Iterator[Stages]:
    """A :class:`Stages` for a step: a rich bar when stderr is a terminal, plain lines otherwise."""
    from rich.console import Console

    console = Console(stderr=True)
    s = Stages(title, interactive=console.is_terminal and not quiet)
    if quiet:
        s.stage = lambda name, total=None: None  # type: ignore[method-assign]
        yield s
        return
    if not s.interactive:
        try:
            yield s
        finally:
            s.close()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:  # fmt: skip
        s.show_on(progress)
        yield s


#: The last line of a job's progress log.
DONE_LINE = "-- job finished --"


def job_log(data_dir, name: str):
    """Where a job run by the warehouse service writes its progress, one line a step."""
    from pathlib import Path

    path = Path(data_dir).resolve() / "jobs" / f"{name}.progress.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class JobLog:
    """The job's side: ``say(line)`` appends a line the CLI that asked follows."""

    def __init__(self, data_dir, name: str) -> None:
        self._fh = job_log(data_dir, name).open("w", encoding="utf-8")

    def say(self, line: str) -> None:
        self._fh.write(line.replace("\n", " ") + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.write(DONE_LINE + "\n")
        self._fh.close()


def follow_job(call, log_path, title: str, on_line=None):
    """Run ``call()`` (a blocking job request) in a thread and show the job's log as it grows.

    ``on_line(line, stages)`` may drive a bar; by default each line is one plain stage line.
    Returns what ``call`` returned; raises what it raised."""
    import threading
    from pathlib import Path

    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = call()
        except Exception as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    offset = 0
    with stages(title) as bar:
        while True:
            done = not worker.is_alive()
            with log_path.open(encoding="utf-8") as fh:
                fh.seek(offset)
                chunk = fh.read()
                offset = fh.tell()
            for line in chunk.splitlines():
                if line in (DONE_LINE, "-- build finished --"):
                    continue
                if on_line is not None:
                    on_line(line, bar)
                else:
                    bar.stage(line)
            if done:
                break
            time.sleep(0.5)
    if "error" in box:
        raise box["error"]
    return box["result"]
