"""The terminal side of many tenants: a plan directory written and applied, `validate DIR`,
`drift DIR`, `export --out DIR`, per-tenant markdown parts. The commands themselves live in
plans.py, applying.py and tenants.py; they call these when given a directory."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler import files
from reconciler.cli.common import color, messages, protected_files
from reconciler.errors import FileError, UsageError
from reconciler.fleet import FleetOptions, TenantResult, exit_code
from reconciler.i18n import Said
from reconciler.providers import local_path
from reconciler.store import StateLocation


def emit(results: Sequence[TenantResult], fmt: str, detailed: bool, command: str = "plan") -> int:
    """Print a directory's results and return the aggregate exit code."""
    from reconciler.render import fleet as fleet_view

    code = exit_code(results, detailed=detailed)
    if fmt == "json":
        click.echo(fleet_view.render_json(results, code), nl=False)
    elif fmt == "markdown":
        click.echo(fleet_view.render_markdown(results, command, messages()), nl=False)
    else:
        click.echo(fleet_view.render_text(results, color=color(), messages=messages()), nl=False)
    return code


def _protected(results: Sequence[TenantResult], state_uri: str | None) -> files.Protected:
    """The command's own protected files plus every local tenant of the fleet and its store."""
    base = protected_files()
    databases: list[tuple[Path, str]] = []
    for r in results:
        path = local_path(r.uri) if r.uri else None
        if path is None or r.uri is None:
            continue
        databases.append((path, Said.of("the tenant's file ({uri})", uri=r.uri)))
        store = StateLocation.resolve(state_uri, r.uri).path
        if store is not None:
            what = Said.of("a file of the state store ({path})", path=str(store))
            databases += [(store, what), (store.parent / "attested.db", what)]
    more = files.Protected.of(databases)
    return files.Protected(base.files + more.files, base.folders + more.folders)


def _folder(path: str) -> Path:
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FileError(
            Said.of("cannot write to {path}: {reason}", path=path, reason=files.reason(e))
        ) from e
    return folder


def save_plan_dir(
    results: Sequence[TenantResult], out: str, desired_dir: str, state_uri: str | None
) -> None:
    """`plan DIR --out PLANDIR`: one saved plan per tenant with changes, then index.json.

    The index is written last: a write that fails half-way leaves the old index, whose
    digests the new plan files do not match, so apply refuses them rather than mixing runs.
    """
    from reconciler import plandir
    from reconciler.render import renderer_for
    from reconciler.render.json import dump

    if Path(out).resolve() == Path(desired_dir).resolve():
        raise UsageError(
            Said.of("--out {path} is the directory of desired files: choose another", path=out)
        )
    saved = plandir.plan_files(results)
    folder = _folder(out)
    protected = _protected(results, state_uri)
    for item in saved:
        assert item.result.plan is not None
        text = renderer_for("json").render(item.result.plan)
        files.write_output(folder / item.name, text, protected)
    files.write_output(folder / plandir.INDEX, dump(plandir.index_document(saved)), protected)
    kept = {item.name for item in saved}
    for stale in folder.glob(f"*{plandir.PLAN_SUFFIX}"):  # of an earlier run: not listed
        if stale.name not in kept:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    said = messages().n_(
        "Saved {n} plan and {index} to {out} (the tenants with changes; apply them with "
        "`lwr apply {out}`).",
        "Saved {n} plans and {index} to {out} (the tenants with changes; apply them with "
        "`lwr apply {out}`).",
        len(saved),
        index=plandir.INDEX,
        out=out,
    )
    click.echo(said, err=True)


def write_markdown_dir(
    results: Sequence[TenantResult], directory: str, command: str = "plan"
) -> None:
    """`--markdown-dir` of a directory: DIR/summary/part-N.md (the table) and
    DIR/tenants/NAME/part-N.md for each tenant that is not in sync (one sticky comment each);
    the parts of tenants in sync now are removed."""
    from reconciler.plandir import file_names
    from reconciler.render.fleet import summary_parts, tenant_parts

    protected = protected_files()
    folder = _folder(directory)
    t = messages()
    files.write_parts(folder / "summary", summary_parts(results, command, t), protected)
    tenants = folder / "tenants"
    written = set()
    for name, r in zip(file_names(results), results, strict=True):
        if r.outcome in ("in sync", "valid", "exported", "skipped"):
            continue
        files.write_parts(tenants / name, tenant_parts(r, command, t), protected)
        written.add(name)
    for old in tenants.iterdir() if tenants.is_dir() else ():
        if old.is_dir() and old.name not in written:
            files.write_parts(old, [], protected)  # removes its parts
            with contextlib.suppress(OSError):
                old.rmdir()
    wrote = t.n_(
        "Wrote the summary and {n} tenant section to {folder}/.",
        "Wrote the summary and {n} tenant sections to {folder}/.",
        len(written),
        folder=folder,
    )
    click.echo(wrote, err=True)


def apply_plan_dir(plandir_path: str, options: FleetOptions) -> list[TenantResult]:
    """`lwr apply PLANDIR`: each plan the index lists, checked and applied (reconciler.plandir)."""
    from reconciler import fleet, plandir

    loaded = plandir.load_entries(plandir_path, options)
    if not loaded:
        nothing = messages()._(
            "Nothing to apply: {index} lists no plans (every tenant was in sync, or refused, "
            "when it was planned).",
            index=Path(plandir_path) / plandir.INDEX,
        )
        click.echo(nothing)
        return []
    return fleet.run_loaded(loaded, options)


def export_dir(template: str, names: Sequence[str], out: str, state_uri: str | None) -> int:
    """`export --out DIR`: every tenant of the fleet as DIR/DOMAIN.yaml, then the table."""
    from reconciler.fleet_runs import export_fleet

    done = export_fleet(template, names, state_uri)
    folder = _folder(out)
    protected = _protected([d.result for d in done], state_uri)
    for item in done:
        if item.name is not None and item.text is not None:
            files.write_output(folder / item.name, item.text, protected)
    code = emit([item.result for item in done], "text", False, "export")
    click.echo(messages()._("Exported to {out}/.", out=out), err=True)
    return code


def validate_dir(directory: str, tenant_template: str | None) -> int:
    """`validate DIR`: each file's checks; with a --tenant template, also against the tenant
    `plan DIR` would send it to (its domain and directory, read only)."""
    from reconciler import fleet
    from reconciler.fleet_runs import validate_offline, validate_one

    if tenant_template is None:
        results = validate_offline(directory)
    else:
        options = fleet.FleetOptions(tenant_template)
        results = fleet.run_fleet(directory, options, validate_one)
    return emit(results, "text", False, "validate")


def drift_dir(directory: str, options: FleetOptions, fmt: str, markdown_dir: str | None) -> int:
    """`drift DIR`: each tenant's drift report, then the table; exit 2 when any drifted."""
    from reconciler import fleet
    from reconciler.fleet_runs import drift_one

    results = fleet.run_fleet(directory, options, drift_one)
    if markdown_dir:
        write_markdown_dir(results, markdown_dir, "drift")
    return emit(results, fmt, True, "drift")
