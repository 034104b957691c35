"""Many tenants, read only: `lwr drift DIR`, `lwr validate DIR` and `lwr export --out DIR`.

drift and validate run through reconciler.fleet (every file loaded first, one file per
tenant, each to its `target:` or the `--tenant` template, bounded concurrency), so a tenant
is the same one `lwr plan DIR` would read. export goes the other way: every tenant of a
`{tenant}` template (the local tenant files it matches) or of a list, one desired file each,
which `lwr plan DIR` then sends back to the same tenant. Results, never printing.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

from reconciler import workflow
from reconciler.desired import load_desired
from reconciler.errors import ExitCode, LwrError, UsageError
from reconciler.export import dump_yaml, export_document
from reconciler.fleet import (
    FleetOptions,
    Loaded,
    TenantOutcome,
    TenantResult,
    desired_files,
    failed,
    succeeded,
)
from reconciler.i18n import Said
from reconciler.providers import open_provider
from reconciler.selecting import check_desired
from reconciler.store import StateLocation
from reconciler.uris import LOCAL, TENANT_PLACEHOLDER, local_path, redact


def drift_one(loaded: Loaded, options: FleetOptions) -> TenantResult:
    """`lwr drift FILE` for one tenant of the directory: its report, in sync or drifted."""
    from reconciler.drift import drift_report
    from reconciler.policy import evaluate

    assert loaded.desired is not None and loaded.uri is not None
    file, uri = str(loaded.path), loaded.uri
    with closing(open_provider(uri, options.state_uri, readonly=True)) as provider:
        state = StateLocation.resolve(options.state_uri, uri)  # a bad --state fails as on FILE
        planned = workflow.plan_loaded(loaded.desired, provider, lambda: state)
    policy = evaluate(options.rules, desired=planned.desired, plan=planned.plan)
    report = drift_report(planned.desired, planned.current, planned.plan)
    tenant = planned.desired.tenant
    try:
        policy.raise_if_denied()
    except LwrError as e:
        return replace(failed(file, tenant, uri, planned.plan, policy, e), report=report)
    outcome: TenantOutcome = "in sync" if report.in_sync else "drifted"
    return replace(succeeded(file, tenant, uri, planned.plan, policy, outcome), report=report)


def validate_one(loaded: Loaded, options: FleetOptions) -> TenantResult:
    """`lwr validate FILE --tenant URI` for one tenant: the domain and the directory."""
    assert loaded.desired is not None and loaded.uri is not None
    with closing(open_provider(loaded.uri, options.state_uri, readonly=True)) as provider:
        check_desired(loaded.desired, provider)
    return _valid(str(loaded.path), loaded.desired.tenant, loaded.uri)


def validate_offline(directory: str | Path) -> list[TenantResult]:
    """`lwr validate DIR` without a tenant: each file's schema and semantic checks."""
    results = []
    for path in desired_files(directory):
        try:
            desired = load_desired(path)
        except Exception as e:  # one file's mistake must not hide the others'
            results.append(failed(str(path), "?", None, None, None, e))
            continue
        results.append(_valid(str(path), desired.tenant, None))
    return results


def _valid(file: str, tenant: str, uri: str | None) -> TenantResult:
    return TenantResult(file, tenant, redact(uri) if uri else None, "valid", ExitCode.OK)


# --- export ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    """One tenant exported: its result, and the desired file to write (None: it failed)."""

    result: TenantResult
    name: str | None = None
    text: str | None = None


def fleet_tenants(template: str, names: Sequence[str], state_uri: str | None) -> list[str]:
    """The `{tenant}` values of a fleet: `names` when given, else every local tenant file the
    template matches (never the state store beside them)."""
    if TENANT_PLACEHOLDER not in template:
        raise UsageError(
            Said.of(
                "--tenant {template!r} has no {{tenant}} placeholder: export "
                "to a directory needs a template, e.g. 'local:tenants/{{tenant}}.db'",
                template=redact(template),
            )
        )
    if names:
        return list(dict.fromkeys(names))
    path = local_path(template)
    if path is None:
        raise UsageError(
            Said.of(
                "the tenants of a lineworks: template cannot be listed: name them with "
                "--tenants DOMAIN[,DOMAIN…]"
            )
        )
    placeholder = re.escape(TENANT_PLACEHOLDER)
    shape = re.compile(
        re.escape(str(path)).replace(placeholder, "(.+)", 1).replace(placeholder, r"\1")
    )
    store = StateLocation.resolve(state_uri, template.replace(TENANT_PLACEHOLDER, "x")).path
    skip = {p.resolve() for p in (store, store.parent / "attested.db")} if store else set()
    found = []
    for match in sorted(glob.glob(glob.escape(str(path)).replace(TENANT_PLACEHOLDER, "*"))):
        m = shape.fullmatch(match)
        if m and Path(match).resolve() not in skip:
            found.append(m.group(1))
    if not found:
        raise UsageError(Said.of("no tenant files match {template}", template=redact(template)))
    return found


def export_fleet(
    template: str, names: Sequence[str], state_uri: str | None = None
) -> list[Exported]:
    """Export every tenant of the fleet as `DOMAIN.yaml`; a failure is that tenant's result.

    A tenant found under another name than its domain gets a `target:` naming its URI, so
    that `lwr plan DIR --tenant TEMPLATE` sends the file back to it.
    """
    done: list[Exported] = []
    taken: set[str] = set()
    for name in fleet_tenants(template, names, state_uri):
        uri = template.replace(TENANT_PLACEHOLDER, name)
        try:
            done.append(_export_one(uri, name, template, state_uri, taken))
        except Exception as e:  # one tenant's outage must not stop the others
            done.append(Exported(failed(name, name, uri, None, None, e)))
    return done


def _export_one(
    uri: str, name: str, template: str, state_uri: str | None, taken: set[str]
) -> Exported:
    with closing(open_provider(uri, state_uri, readonly=True)) as provider:
        state = provider.read()
    document = export_document(state)
    if template.replace(TENANT_PLACEHOLDER, state.domain) != uri:
        if not uri.startswith(LOCAL):
            raise UsageError(
                Said.of(
                    "{uri} is the tenant {domain}, not {name}: list it by its "
                    "domain in --tenants, so that plan DIR finds it again",
                    uri=redact(uri),
                    domain=state.domain,
                    name=name,
                )
            )
        document = {
            "version": document["version"],
            "tenant": state.domain,
            "target": uri,
            **document,
        }
    file = re.sub(r"[^A-Za-z0-9._-]+", "_", state.domain).lstrip(".") + ".yaml"
    if file in taken:
        raise UsageError(
            Said.of("two tenants of the fleet export to {file}: name one with target:", file=file)
        )
    taken.add(file)
    result = TenantResult(file, state.domain, redact(uri), "exported", ExitCode.OK)
    return Exported(result, file, dump_yaml(document))
