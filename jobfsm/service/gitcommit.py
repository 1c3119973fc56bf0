"""``--git-commit``: every change made through the service is a commit of that job's file.

:class:`GitCommitter` is a :class:`~jobfsm.service.hooks.FileHook`; it runs the ``git`` command
(no library) in the jobs folder, which must be inside a git work tree (the folder itself or one
above it).

- **Before** a file is written or removed it asks ``git status`` about that one file: a file with
  changes that are not committed (modified, staged, untracked, deleted by hand), a file in a merge
  conflict, a file git ignores, or a work tree in the middle of a merge, rebase, cherry-pick or
  revert refuses the change with :class:`~jobfsm.errors.WorkTreeError`, and nothing is written:
  jobfsm never commits someone's uncommitted work under another name, and never overwrites it.
  Other files of the work tree may be dirty; they are left alone (staged or not).
- **After**, it commits that file alone (``git add`` then ``git commit -- FILE``), with the
  message ``jobfsm: ACTION JOB (by USER)``, authored by the acting user (the admin page's
  account, the CLI's ``--user`` or login name; git wants an e-mail address, and jobfsm knows
  none, so it is empty) and committed by ``jobfsm``. Hooks of the repository (pre-commit,
  commit-msg) are skipped: the service already validated the file, and a hook refusing now would
  leave it changed but not committed. Signing is off for these commits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from jobfsm.errors import CommitFailedError, WorkTreeError
from jobfsm.problems import quote
from jobfsm.service.hooks import FileChange

__all__ = ["COMMITTER", "GitCommitter", "commit_message"]

COMMITTER = "jobfsm"
"""The committer's name of every commit jobfsm makes (the author is the acting user)."""
_TIMEOUT_SECONDS = 60.0
_UNMERGED = frozenset({"DD", "AU", "UD", "UA", "DU", "AA", "UU"})
_IN_PROGRESS = (
    ("MERGE_HEAD", "a merge"),
    ("rebase-merge", "a rebase"),
    ("rebase-apply", "a rebase"),
    ("CHERRY_PICK_HEAD", "a cherry-pick"),
    ("REVERT_HEAD", "a revert"),
)
_STATES = {"M": "modified", "A": "added", "D": "deleted", "R": "renamed", "C": "copied", "T": "type changed"}


def commit_message(change: FileChange) -> str:
    return f"jobfsm: {change.action} {change.job} (by {_ident(change.user)})"


def _ident(name: str) -> str:
    """A user name as git takes it: no angle brackets or line breaks (git would refuse)."""
    cleaned = "".join(c for c in name if c not in "<>\n\r\0").strip()
    return cleaned or "unknown"


class GitCommitter:
    """Commits each change of a job file in the jobs folder's git work tree (see the module).

    Built once per service: it checks at once that ``git`` is there and that the folder is in a
    work tree, and raises :class:`~jobfsm.errors.WorkTreeError` with one line saying what to do."""

    def __init__(self, jobs_directory: Path | str, *, git: str = "git") -> None:
        self.directory = Path(jobs_directory)
        found = shutil.which(git)
        if found is None:
            raise WorkTreeError(f"--git-commit needs git, and there is no {git!r} on PATH; install git")
        self._git = found
        shown = quote(str(self.directory), 200)
        if not self.directory.is_dir():
            raise WorkTreeError(
                f"--git-commit: the jobs folder {shown} does not exist; create it inside a git work tree"
            )
        top = self._run("rev-parse", "--show-toplevel")
        if top.returncode != 0:
            reason = _first_line(top.stderr)
            raise WorkTreeError(
                f"--git-commit: the jobs folder {shown} is not in a git work tree ({reason}); "
                "run `git init` there or in a folder above it, or leave out --git-commit"
            )
        self.work_tree = Path(top.stdout.strip())
        self._git_dir = Path(self._run("rev-parse", "--absolute-git-dir").stdout.strip())

    # -- the hook ------------------------------------------------------------------------
    def before(self, change: FileChange) -> None:
        """Refuse (:class:`WorkTreeError`) unless the file is as its last commit has it."""
        shown = quote(str(change.path), 200)
        for marker, what in _IN_PROGRESS:
            if (self._git_dir / marker).exists():
                raise WorkTreeError(
                    f"{shown}: not changed: the git work tree {str(self.work_tree)!r} is in the middle "
                    f"of {what}; finish or abort it first"
                )
        status = self._run(
            "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=matching",
            "--", self._name(change),
        )
        if status.returncode != 0:
            raise WorkTreeError(f"{shown}: not changed: git status failed: {_first_line(status.stderr)}")
        for entry in status.stdout.split("\0"):
            if len(entry) < 3:
                continue
            code = entry[:2]
            if code in _UNMERGED:
                raise WorkTreeError(
                    f"{shown}: not changed: the file has a merge conflict in git; resolve it "
                    f"(git -C {self.directory} status) and commit, then try again"
                )
            if code == "!!":
                raise WorkTreeError(
                    f"{shown}: not changed: git ignores this file (.gitignore), so the change "
                    "could not be committed; stop ignoring it, or leave out --git-commit"
                )
            raise WorkTreeError(
                f"{shown}: not changed: the file has changes not committed to git ({_describe(code)}); "
                f"commit or discard them first (git -C {self.directory} status -- {change.path.name})"
            )

    def after(self, change: FileChange) -> None:
        """Commit the file alone; :class:`CommitFailedError` if git would not."""
        name = self._name(change)
        added = self._run("add", "--all", "--", name)
        if added.returncode == 0:
            committed = self._run(
                "-c", "commit.gpgSign=false", "commit", "--quiet", "--no-verify",
                "--message", commit_message(change), "--", name,
                author=change.user,
            )
            if committed.returncode == 0:
                return
            added = committed
        raise CommitFailedError(
            f"job {change.job!r} was changed ({change.action}), but git did not commit "
            f"{quote(str(change.path), 200)}: {_first_line(added.stderr or added.stdout)}; commit it by hand"
        )

    # -- helpers -------------------------------------------------------------------------
    def _name(self, change: FileChange) -> str:
        """The file as a pathspec relative to the jobs folder (git runs there), taken literally."""
        return f":(literal){change.path.name}"

    def _run(self, *args: str, author: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
        if author is not None:
            env.update(
                GIT_AUTHOR_NAME=_ident(author), GIT_AUTHOR_EMAIL="",
                GIT_COMMITTER_NAME=COMMITTER, GIT_COMMITTER_EMAIL="",
            )
        try:
            return subprocess.run(
                [self._git, "-C", str(self.directory), *args], env=env, stdin=subprocess.DEVNULL,
                capture_output=True, text=True, errors="replace", timeout=_TIMEOUT_SECONDS, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess(args, 1, "", str(exc))


def _describe(code: str) -> str:
    if code == "??":
        return "untracked: never committed"
    staged, unstaged = code[0], code[1]
    parts = []
    if staged not in " ?":
        parts.append(f"{_STATES.get(staged, staged)} in the index")
    if unstaged not in " ?":
        parts.append(f"{_STATES.get(unstaged, unstaged)} in the work tree")
    return ", ".join(parts) or code.strip()


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no reason given"
