"""The views of a fleet run (`lwr plan DIR`, `lwr apply DIR`): text, Markdown and JSON.

Each tenant's plan is rendered by the plan renderers; every name and message from a file or a
tenant is made printable (text) or inert (Markdown) here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.fleet import TenantResult


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def message_of(result: TenantResult) -> str:
    """The tenant's message as shown: a stop before manual steps lists them."""
    from reconciler.render.checklist import pending_message

    return pending_message(result.pending) if result.pending else result.message


def summary_text(results: Sequence[TenantResult]) -> str:
    """The summary table: tenant, file, changes, destructive, result."""
    rows = [("tenant", "file", "changes", "destructive", "result")]
    rows += [
        (r.tenant, Path(r.file).name, str(r.changes), str(r.destructive), r.outcome)
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts = {
        o: sum(1 for r in results if r.outcome == o)
        for o in ("in sync", "changes", "applied", "refused", "error", "skipped")
    }
    lines.append("")
    lines.append(fleet_line(results, counts))
    for r in results:
        if r.outcome in ("refused", "error"):
            lines.append(f"{Path(r.file).name}: {_first_line(message_of(r))}")
    return "\n".join(lines) + "\n"


def fleet_line(results: Sequence[TenantResult], counts: dict[str, int]) -> str:
    """`4 tenants: 4 with changes; 28 changes in all`: outcomes counted per tenant, changes
    per change."""
    from reconciler.words import plural

    outcomes = ", ".join(
        f"{n} {'with changes' if o == 'changes' else o}" for o, n in counts.items() if n
    )
    changes = sum(r.changes for r in results)
    return f"{plural(len(results), 'tenant')}: {outcomes}; {plural(changes, 'change')} in all"


def render_text(results: Sequence[TenantResult], *, color: bool = False) -> str:
    """Each tenant's plan (or failure) under a header, then the summary table; every name
    and message printable (the plans escape their own values)."""
    from reconciler.render import renderer_for
    from reconciler.terminal import printable

    parts: list[str] = []
    for r in results:
        parts.append(
            printable(
                f"=== {r.tenant} ({Path(r.file).name}"
                + (f" → {r.uri}" if r.uri else "")
                + f"): {r.outcome} ===\n"
            )
        )
        if r.plan is not None:
            parts.append(renderer_for("text", color=color, policy=r.policy).render(r.plan))
        if r.message:
            parts.append(printable(message_of(r).rstrip("\n")) + "\n")
        parts.append("\n")
    parts.append(printable(summary_text(results)))
    return "".join(parts)


def render_markdown(results: Sequence[TenantResult]) -> str:
    """A summary table, then one collapsed <details> section per tenant; names and messages
    inert (reconciler.render.markdown: code in the table, HTML-escaped in <summary>)."""
    from reconciler.render.markdown import PlanMarkdown, md_code, md_escape, md_html

    lines = [
        f"### lwr plan for {len(results)} tenants",
        "",
        "| tenant | file | changes | destructive | result |",
        "|---|---|--:|--:|---|",
    ]
    lines += [
        f"| {md_code(r.tenant, table=True)} | {md_code(Path(r.file).name, table=True)} | "
        f"{r.changes} | {r.destructive} | {r.outcome} |"
        for r in results
    ]
    lines.append("")
    for r in results:
        lines += [
            "<details>",
            f"<summary>{md_html(r.tenant)} ({md_html(Path(r.file).name)}): {r.outcome}</summary>",
            "",
        ]
        if r.plan is not None:
            lines.append(PlanMarkdown(policy=r.policy).render(r.plan).rstrip("\n"))
            lines.append("")
        if r.message:
            text = message_of(r).rstrip("\n")
            lines += [*(f"> {md_escape(line)}" for line in text.splitlines()), ""]
        lines += ["</details>", ""]
    return "\n".join(lines)


def render_json(results: Sequence[TenantResult], code: int) -> str:
    """The results as JSON: per tenant its summary and, when made, its plan."""
    from reconciler.render import renderer_for

    tenants = []
    for r in results:
        entry: dict[str, object] = {
            "tenant": r.tenant,
            "file": r.file,
            "target": r.uri,
            "result": r.outcome,
            "exit_code": r.exit_code,
            "changes": r.changes,
            "destructive": r.destructive,
            "message": message_of(r),
        }
        if r.plan is not None:
            entry["plan"] = json.loads(renderer_for("json").render(r.plan))
        tenants.append(entry)
    from reconciler.render.json import dump

    return dump({"exit_code": code, "tenants": tenants})
