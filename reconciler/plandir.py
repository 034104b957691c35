"""A directory of saved plans, one a tenant: what `lwr plan DIR --out PLANDIR` writes and
`lwr apply PLANDIR` applies.

PLANDIR holds one saved plan per tenant with changes (the format of `lwr plan FILE --out`,
reconciler.saved_plan) and `index.json` (schemas/plan-index.schema.json): which plan file is
whose, with its digests. Nothing in PLANDIR decides more than a single saved plan may. The
index only lists what to apply: a plan file must be a plain file directly in PLANDIR, its
digests must be the ones the index lists, its tenant the one the index names; where it goes
is decided from the desired document it carries, as `lwr plan DIR` decides it
(reconciler.targets.file_target against `--tenant`), so a plan cannot leave the fleet; and each
plan is then checked against its tenant exactly like `lwr apply PLAN.json` (planned again,
not applied already). A refused or failing plan does not stop the others.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from reconciler import __version__
from reconciler.errors import InputError, Problem, Refused, UsageError
from reconciler.files import read_input
from reconciler.fleet import FleetOptions, Loaded, TenantResult, failed
from reconciler.i18n import Said
from reconciler.resources import load_schema
from reconciler.saved_plan import read_saved_plan
from reconciler.targets import file_target
from reconciler.uris import tenant_key
from reconciler.words import utc_now

INDEX = "index.json"
SCHEMA_FILE = "plan-index.schema.json"
INDEX_VERSION = "1.0"
PLAN_SUFFIX = ".plan.json"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class PlanFile:
    """One tenant's saved plan in PLANDIR: its file name and the result it was planned in."""

    name: str
    result: TenantResult


def plan_files(results: Sequence[TenantResult]) -> list[PlanFile]:
    """The plans `plan DIR --out PLANDIR` saves: every tenant planned with changes (not one
    that was refused, failed or is in sync), named after its desired file."""
    chosen = [r for r in results if r.outcome == "changes" and r.plan is not None]
    return [
        PlanFile(name + PLAN_SUFFIX, r) for name, r in zip(file_names(chosen), chosen, strict=True)
    ]


def file_names(results: Sequence[TenantResult]) -> list[str]:
    """A name per tenant for files and folders written for it, from its desired file's name
    (`a.yaml` → `a`); `a.yaml` and `a.yml` both present keep their full names."""
    stems = [_stem(Path(r.file).stem) for r in results]
    return [
        stem if stems.count(stem) == 1 else _stem(Path(r.file).name)
        for stem, r in zip(stems, results, strict=True)
    ]


def _stem(name: str) -> str:
    return _SAFE_NAME.sub("_", name).lstrip(".") or "tenant"


def index_document(saved: Sequence[PlanFile]) -> dict[str, Any]:
    """`index.json`: which plan file is whose, with the digests apply checks it against."""
    plans = []
    for item in saved:
        plan = item.result.plan
        assert plan is not None  # plan_files keeps planned results only
        plans.append(
            {
                "tenant": plan.tenant,
                "file": Path(item.result.file).name,
                "plan": item.name,
                "plan_digest": plan.digest,
                "desired_digest": plan.desired_digest,
                "changes": len(plan.changes),
            }
        )
    return {
        "format_version": INDEX_VERSION,
        "kind": "plan-index",
        "tool_version": __version__,
        "created_at": utc_now("seconds"),
        "plans": plans,
    }


def is_plan_dir(path: str | Path) -> bool:
    """A directory with an `index.json`: saved plans, not desired files."""
    folder = Path(path)
    return folder.is_dir() and (folder / INDEX).exists()


# --- reading the index ---------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One line of the index, as written there (checked against the plan file it names)."""

    tenant: str
    file: str
    plan: str
    plan_digest: str
    desired_digest: str


def read_index(plandir: str | Path) -> list[Entry]:
    """PLANDIR/index.json, checked against its schema (a malformed index: exit 1)."""
    source = str(Path(plandir) / INDEX)
    try:
        data = json.loads(read_input(source).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _bad_index(source, Said.of("not valid JSON ({reason})", reason=str(e))) from e
    version = data.get("format_version") if isinstance(data, dict) else None
    if isinstance(version, str) and version.split(".")[0] != INDEX_VERSION.split(".")[0]:
        unread = Said.of(
            "format_version {version} is not one this lwr reads (1.x)", version=version
        )
        raise _bad_index(source, unread)
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise _bad_index(source, f"{at}: {first.message[:300]}")
    return [
        Entry(e["tenant"], e["file"], e["plan"], e["plan_digest"], e["desired_digest"])
        for e in data["plans"]
    ]


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema(SCHEMA_FILE))


def _bad_index(source: str, why: str) -> InputError:
    return InputError(
        [
            Problem(
                source,
                0,
                0,
                "",
                Said.of("not a plan index: {why}", why=why),
                Said.of("write PLANDIR with `lwr plan DIR --out PLANDIR`"),
            )
        ]
    )


# --- applying ------------------------------------------------------------------------------


def load_entries(plandir: str | Path, options: FleetOptions) -> list[Loaded]:
    """Every plan the index lists, read and checked, and the tenant it goes to; a plan that
    fails a check carries the result that says why. `reconciler.fleet.run_loaded` with
    `options.apply` then applies each as `lwr apply PLAN.json --auto-approve` would."""
    folder = Path(plandir)
    return [_load_entry(folder, entry, options) for entry in read_index(folder)]


def _load_entry(folder: Path, entry: Entry, options: FleetOptions) -> Loaded:
    path = folder / entry.plan
    uri: str | None = None
    tenant = entry.tenant
    try:
        _inside(folder, entry.plan)
        saved = read_saved_plan(path)
        tenant = saved.plan.tenant  # the plan's own, whatever the index calls it
        _agrees(entry, saved.document, path)
        desired = saved.desired
        where = f"{path} (desired_document): "
        uri = file_target(
            (desired.document or {}).get("target"), desired.tenant, options.tenant_template, where
        )
        return Loaded(path, desired, uri, tenant_key(uri), saved=saved)
    except Exception as e:  # one plan's problem must not stop the others
        return Loaded(path, failed=failed(str(path), tenant, uri, None, None, e))


def _inside(folder: Path, name: str) -> None:
    """Refuse a plan file the index names outside PLANDIR: another folder, `..`, a symlink."""
    path = folder / name
    where = {"index": str(folder / INDEX), "name": name, "folder": str(folder)}
    if Path(name).name != name or name in (".", ".."):
        raise Refused(Said.of("refused: {index} names {name!r}, not a file in {folder}", **where))
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise UsageError(
            Said.of("{index} lists {name}, which is not in {folder}", **where)
        ) from None
    if stat.S_ISLNK(mode) or not path.resolve().parent == folder.resolve():
        raise Refused(
            Said.of(
                "refused: {path} is a symlink; a plan directory holds the plans themselves",
                path=str(path),
            )
        )


def _agrees(entry: Entry, document: Mapping[str, Any], path: Path) -> None:
    """The plan file is the one the index lists: same tenant, same digests."""
    for key, listed in (
        ("tenant", entry.tenant),
        ("plan_digest", entry.plan_digest),
        ("desired_digest", entry.desired_digest),
    ):
        if document.get(key) != listed:
            raise Refused(
                Said.of(
                    "refused: {path} is not the plan the index lists ({key} is {in_plan} in "
                    "the plan, {in_index} in {index}); make PLANDIR again with `lwr plan DIR "
                    "--out PLANDIR` and review it",
                    path=str(path),
                    key=key,
                    in_plan=repr(str(document.get(key))[:64]),
                    in_index=repr(listed[:64]),
                    index=INDEX,
                )
            )
