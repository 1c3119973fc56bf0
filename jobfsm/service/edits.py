"""What an edit makes of a job document: the rules the service applies to every change, once.

Every caller (the admin page's form and raw JSON editor, the CLI, the Python API) sends what it
holds; these functions turn that into the document to write and the record of what changed.
See docs/architecture.md (the admin page and the service) for where they are called.

- :func:`patched`: ``update_job``'s patch, where None removes a key.
- :func:`merged`: an editor's whole document, applied by meaning, so that a key the file spells
  out with its default value, or leaves out, stays as written when the editor left it alone.
- :func:`keep_masked_secrets`: everything the service shows has secret ``env`` values masked,
  so an editor sends the mask back; the stored value is kept for it.
- :func:`diff`: the audit entry's ``changes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from jobfsm.audit import MASK, is_secret_key
from jobfsm.config.schema import job_schema
from jobfsm.problems import Problem

__all__ = ["diff", "keep_masked_secrets", "merged", "optional_defaults", "patched"]

_ABSENT = object()


@cache
def optional_defaults() -> dict[str, Any]:
    """The schema's default of every optional top-level key: what leaving it out means."""
    schema = job_schema()
    required = set(schema.get("required", ()))
    return {
        key: prop["default"]
        for key, prop in schema["properties"].items()
        if key not in required and "default" in prop
    }


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: ``1`` is not ``true`` and ``1`` is not ``1.0`` here."""
    return a == b and type(a) is type(b)


def patched(doc: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with ``patch`` applied: each key set to its value, or removed where it is None."""
    new = dict(doc)
    for key, value in patch.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    return new


def merged(old: Mapping[str, Any], shown: Mapping[str, Any]) -> dict[str, Any]:
    """The document an editor means by ``shown`` (the whole job, optional keys at their default
    possibly left out), written over ``old`` so that only keys whose meaning changed move: a
    key the editor left at what ``old`` means (given or by default) keeps ``old``'s spelling."""
    defaults = optional_defaults()
    new = dict(old)
    for key in [*old, *(k for k in shown if k not in old)]:
        before = old.get(key, defaults.get(key, _ABSENT))
        after = shown.get(key, defaults.get(key, _ABSENT))
        if _same(before, after):
            continue
        if key in shown:
            new[key] = shown[key]
        else:
            new.pop(key, None)
    return new


def keep_masked_secrets(
    old: Mapping[str, Any], new: dict[str, Any], path: str
) -> tuple[dict[str, Any], list[Problem]]:
    """(``new`` with each masked secret put back, problems): an ``env`` value that is still
    :data:`~jobfsm.audit.MASK` under a secret-looking key keeps the value ``old`` stores under
    that key. Where ``old`` has none (a new key, a renamed one, a new job) the mask stands for
    nothing, and saving it would give the job the six dots as its secret: that is a problem at
    ``$.env.KEY``. A non-secret key is never masked, so its value is stored as given."""
    old_env, new_env = old.get("env"), new.get("env")
    if not isinstance(new_env, dict):
        return new, []
    stored = old_env if isinstance(old_env, dict) else {}
    problems: list[Problem] = []
    kept: dict[str, Any] = {}
    for key, value in new_env.items():
        if value != MASK or not is_secret_key(key):
            kept[key] = value
        elif key in stored:
            kept[key] = stored[key]
        else:
            kept[key] = value
            problems.append(Problem(
                path, f"$.env.{key}",
                f"{MASK} is how the page shows a secret, and there is no stored value of {key} "
                "to keep; type the secret itself",
            ))
    return (new if kept == new_env else {**new, "env": kept}), problems


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{key: {"old": ..., "new": ...}}`` for every key whose value changed (None: absent)."""
    changes = {}
    for key in [*old, *(k for k in new if k not in old)]:
        before, after = old.get(key), new.get(key)
        if not _same(before, after):
            changes[key] = {"old": before, "new": after}
    return changes
