"""Run the README's step-by-step block as a new user would, and check what it prints.

The block (README.md, "Running it step by step") is a console session: a line ``$ command`` is run,
the lines after it up to the next command are output the user should expect. Each expected line
must appear in the command's output (stdout and stderr), ``…`` standing for anything. Commands run
in order in one bash session (so ``source`` and ``export`` carry over), in a copy of the working
tree with the repository's ``.venv`` linked in and no ``FUPIN_*`` variable set: a fresh clone.
A command that fails, or an expected line that is absent, fails the check; ``fupin down`` runs
at the end whatever happened.

``python -m tests.e2e.readme_steps`` (``make readme-check``) prints each step; the e2e test
tests/e2e/test_readme.py runs the same function.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Running it step by step"


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


class ReadmeCheckError(AssertionError):
    """A README command failed or did not print what the README says it prints."""


def readme_steps(readme: Path = ROOT / "README.md") -> list[Step]:
    """The console session of the README's step-by-step section."""
    text = readme.read_text(encoding="utf-8")
    start = text.index(SECTION)
    block = re.search(r"```console\n(.*?)```", text[start:], re.S)
    if block is None:
        raise ReadmeCheckError(f"README.md: no ```console block under {SECTION!r}")
    steps: list[Step] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            steps.append(Step(line[2:].split("  #")[0].strip()))
        elif line.strip() and steps:
            steps[-1].expected.append(line.rstrip())
    return steps


def matches(expected: str, output: str) -> bool:
    """Whether some output line holds the expected line, ``…`` matching anything."""
    pattern = ".*?".join(re.escape(part.strip()) for part in expected.split("…"))
    return re.search(pattern, output) is not None


def _copy_tree(dest: Path) -> None:
    """The working tree's files (tracked and new, not ignored), as a fresh clone would have them."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / ".venv").symlink_to(ROOT / ".venv")


def run_readme(workdir: Path | None = None, echo: bool = True, step_timeout: float = 900.0) -> list[Step]:
    """Run every step; raise ReadmeCheckError on the first failure. Returns the steps run."""
    steps = readme_steps()
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="fupin-readme-")) if own else workdir
    _copy_tree(workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUPIN_") and k != "VIRTUAL_ENV"}
    shell = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=workdir, env=env, stdin=subprocess.PIPE,
                             text=True)  # fmt: skip
    logs = workdir / ".readme-check"
    logs.mkdir()
    try:
        for n, step in enumerate(steps):
            out, rc = logs / f"{n}.out", logs / f"{n}.rc"
            command = step.command
            if command.endswith("&"):  # a background process: its output to its own file
                line = f"{command[:-1].strip()} > {logs}/{n}.bg 2>&1 &\necho 0 > {rc}\n"
            else:
                line = f"{{ {command} ; }} > {out} 2>&1; echo $? > {rc}\n"
            if echo:
                print(f"$ {command}", flush=True)
            started = time.monotonic()
            shell.stdin.write(line)
            shell.stdin.flush()
            while not rc.exists() or not rc.read_text().strip():
                if shell.poll() is not None:
                    raise ReadmeCheckError(f"the shell ended at step {n + 1}: {command}")
                if time.monotonic() - started > step_timeout:
                    raise ReadmeCheckError(f"step {n + 1} did not finish within {step_timeout:.0f}s: {command}")
                time.sleep(0.2)
            output = out.read_text(errors="replace") if out.exists() else ""
            if echo and output:
                print(output.rstrip(), flush=True)
            code = int(rc.read_text())
            if code != 0:
                raise ReadmeCheckError(f"step {n + 1} failed with exit code {code}: {command}\n{output[-3000:]}")
            absent = [e for e in step.expected if not matches(e, output)]
            if absent:
                raise ReadmeCheckError(
                    f"step {n + 1} ({command}) did not print what the README says:\n  "
                    + "\n  ".join(absent) + f"\n--- it printed:\n{output[-3000:]}"
                )
            if echo:
                print(f"  ok ({time.monotonic() - started:.1f}s)", flush=True)
        return steps
    finally:
        shell.stdin.write(f"fupin down > {logs}/down.out 2>&1; exit\n")
        shell.stdin.flush()
        try:
            shell.wait(120)
        except subprocess.TimeoutExpired:
            shell.kill()
        if own and os.environ.get("FUPIN_README_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    try:
        steps = run_readme()
    except ReadmeCheckError as exc:
        print(f"README check FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"README check passed: {len(steps)} steps ran as written, every expected line printed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
