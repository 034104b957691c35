"""The views of a fleet run (`lwr plan|apply|drift|validate DIR`, `lwr apply PLANDIR`, `lwr
export --out DIR`): text, Markdown and JSON.

Each tenant's plan is rendered by the plan renderers; every name and message from a file or a
tenant is made printable (text) or inert (Markdown) here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.i18n import ENGLISH, N_, Messages, say

if TYPE_CHECKING:
    from reconciler.fleet import TenantResult

#: Each outcome as a person reads it (the JSON's `result` keeps the English word).
OUTCOME_WORDS = {
    "in sync": N_("in sync"),
    "changes": N_("changes"),
    "drifted": N_("drifted"),
    "valid": N_("valid"),
    "exported": N_("exported"),
    "applied": N_("applied"),
    "refused": N_("refused"),
    "error": N_("error"),
    "skipped": N_("skipped"),
}
#: How many tenants had each outcome, for the summary line.
OUTCOME_COUNTS = {
    "in sync": N_("{n} in sync"),
    "changes": N_("{n} with changes"),
    "drifted": N_("{n} drifted"),
    "valid": N_("{n} valid"),
    "exported": N_("{n} exported"),
    "applied": N_("{n} applied"),
    "refused": N_("{n} refused"),
    "skipped": N_("{n} skipped"),
}
#: The summary table's five column headers, one message split at "|" (a word alone, like
#: "changes", would be one id with the outcome of that name).
HEADERS = N_("tenant|file|changes|destructive|result")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def message_of(result: TenantResult, t: Messages = ENGLISH) -> str:
    """The tenant's message as shown, in `t`'s language: a stop before manual steps lists
    them."""
    from reconciler.render.checklist import pending_message

    return pending_message(result.pending, t) if result.pending else say(result.message, t)


def outcome(r: TenantResult, t: Messages = ENGLISH) -> str:
    """The tenant's outcome in `t`'s language."""
    return t._(OUTCOME_WORDS.get(r.outcome, r.outcome))


def summary_text(results: Sequence[TenantResult], t: Messages = ENGLISH) -> str:
    """The summary table: tenant, file, changes, destructive, result; columns aligned by
    display width (a full-width character takes two cells)."""
    from reconciler.render.values import cells, pad

    rows = [tuple(t._(HEADERS).split("|"))]
    rows += [
        (r.tenant, Path(r.file).name, str(r.changes), str(r.destructive), outcome(r, t))
        for r in results
    ]
    widths = [max(cells(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(pad(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    from reconciler.fleet import OUTCOMES

    counts: dict[str, int] = {o: sum(1 for r in results if r.outcome == o) for o in OUTCOMES}
    lines.append("")
    lines.append(fleet_line(results, counts, t))
    for r in results:
        if r.outcome in ("refused", "error"):
            lines.append(f"{Path(r.file).name}: {_first_line(message_of(r, t))}")
    return "\n".join(lines) + "\n"


def fleet_line(
    results: Sequence[TenantResult], counts: dict[str, int], t: Messages = ENGLISH
) -> str:
    """`4 tenants: 4 with changes; 28 changes in all`: outcomes counted per tenant, changes
    per change."""
    outcomes = t._(", ").join(_counted(o, n, t) for o, n in counts.items() if n)
    changes = sum(r.changes for r in results)
    total = t.n_("{n} change in all", "{n} changes in all", changes)
    return t.n_(
        "{n} tenant: {outcomes}; {total}",
        "{n} tenants: {outcomes}; {total}",
        len(results),
        outcomes=outcomes,
        total=total,
    )


def _counted(outcome: str, n: int, t: Messages) -> str:
    """`2 with changes`, `1 error`, `2 errors`: the one count that is a noun has a plural."""
    if outcome == "error":
        return t.n_("{n} error", "{n} errors", n)
    return t._(OUTCOME_COUNTS[outcome], n=n)


def render_text(
    results: Sequence[TenantResult], *, color: bool = False, messages: Messages = ENGLISH
) -> str:
    """Each tenant's plan (or failure) under a header, then the summary table; every name
    and message printable (the plans escape their own values); in `messages`' language."""
    from reconciler.render import drift_renderer_for, renderer_for
    from reconciler.terminal import printable

    t = messages
    parts: list[str] = []
    for r in results:
        fields = {"tenant": r.tenant, "file": Path(r.file).name, "outcome": outcome(r, t)}
        if r.uri:
            head = t._("=== {tenant} ({file} → {uri}): {outcome} ===", uri=r.uri, **fields)
        else:
            head = t._("=== {tenant} ({file}): {outcome} ===", **fields)
        parts.append(printable(head) + "\n")
        if r.report is not None:
            parts.append(drift_renderer_for("text", color=color, policy=r.policy).render(r.report))
        elif r.plan is not None:
            view = renderer_for("text", color=color, policy=r.policy, messages=t)
            parts.append(view.render(r.plan))
        if r.message:
            parts.append(printable(message_of(r, t).rstrip("\n")) + "\n")
        parts.append("\n")
    parts.append(printable(summary_text(results, t)))
    return "".join(parts)


def _summary_rows(results: Sequence[TenantResult], t: Messages) -> list[str]:
    from reconciler.render.markdown import md_code

    return [
        t._("| tenant | file | changes | destructive | result |"),
        "|---|---|--:|--:|---|",
        *(
            f"| {md_code(r.tenant, table=True)} | {md_code(Path(r.file).name, table=True)} | "
            f"{r.changes} | {r.destructive} | {outcome(r, t)} |"
            for r in results
        ),
    ]


def _title(command: str, n: int, t: Messages) -> str:
    return "### " + t.n_(
        "lwr {command} for {n} tenant", "lwr {command} for {n} tenants", n, command=command
    )


def render_markdown(
    results: Sequence[TenantResult], command: str = "plan", messages: Messages = ENGLISH
) -> str:
    """A summary table, then one collapsed <details> section per tenant; names and messages
    inert (reconciler.render.markdown: code in the table, HTML-escaped in <summary>)."""
    from reconciler.render.markdown import md_html

    t = messages
    lines = [_title(command, len(results), t), "", *_summary_rows(results, t), ""]
    for r in results:
        summary = t._(
            "{tenant} ({file}): {outcome}",
            tenant=md_html(r.tenant),
            file=md_html(Path(r.file).name),
            outcome=md_html(outcome(r, t)),
        )
        lines += [
            "<details>",
            f"<summary>{summary}</summary>",
            "",
            *_tenant_body(r, t),
            "</details>",
            "",
        ]
    return "\n".join(lines)


def _tenant_body(r: TenantResult, t: Messages) -> list[str]:
    from reconciler.render.drift_markdown import DriftMarkdown
    from reconciler.render.markdown import PlanMarkdown

    lines = []
    if r.report is not None:
        lines += [DriftMarkdown(policy=r.policy, messages=t).render(r.report).rstrip("\n"), ""]
    elif r.plan is not None:
        lines += [PlanMarkdown(policy=r.policy, messages=t).render(r.plan).rstrip("\n"), ""]
    return lines + _message(r, t)


def _message(r: TenantResult, t: Messages) -> list[str]:
    from reconciler.render.markdown import md_escape

    if not r.message:
        return []
    text = message_of(r, t).rstrip("\n")[:MESSAGE_LIMIT]
    return [*(f"> {md_escape(line)}" for line in text.splitlines()), ""]


#: A tenant's message in a markdown part is cut here, so that the part stays under the limit.
MESSAGE_LIMIT = 400


def summary_parts(
    results: Sequence[TenantResult], command: str = "plan", messages: Messages = ENGLISH
) -> list[str]:
    """`--markdown-dir` of a directory: the summary table alone, as comment-sized parts (each
    repeats the table's header)."""
    from reconciler.render.markdown import paginate

    t = messages
    header, rule, *rows = _summary_rows(results, t)
    step = 400  # rows per block: a block is never split, and 400 short rows fit a part
    blocks = ["\n".join([header, rule, *rows[i : i + step]]) for i in range(0, len(rows), step)]
    return paginate(_title(command, len(results), t), blocks or ["\n".join([header, rule])], t=t)


def tenant_parts(r: TenantResult, command: str = "plan", messages: Messages = ENGLISH) -> list[str]:
    """`--markdown-dir` of a directory: one tenant's comment(s), its plan or drift report as
    a single file shows it, with why it was refused or failed."""
    from reconciler.render.drift_markdown import DriftMarkdown
    from reconciler.render.markdown import PlanMarkdown, md_code

    t = messages
    if r.report is not None:
        parts = DriftMarkdown(policy=r.policy, messages=t).render_parts(r.report)
    elif r.plan is not None:
        parts = PlanMarkdown(policy=r.policy, messages=t).render_parts(r.plan)
    else:
        title = "### " + t._(
            "lwr {command} for {tenant} ({file})",
            command=command,
            tenant=md_code(r.tenant),
            file=md_code(Path(r.file).name),
        )
        parts = [f"{title}\n"]
    note = [f"**{outcome(r, t)}**", "", *_message(r, t)]
    return [*parts[:-1], parts[-1].rstrip("\n") + "\n\n" + "\n".join(note).rstrip("\n") + "\n"]


def render_json(results: Sequence[TenantResult], code: int) -> str:
    """The results as JSON, an object: the aggregate exit code and, per tenant, its summary
    and, when made, its plan (or drift report)."""
    from reconciler.render import renderer_for
    from reconciler.render.json import DriftJson

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
        if r.report is not None:
            entry["drift"] = json.loads(DriftJson(policy=r.policy).render(r.report))
        elif r.plan is not None:
            entry["plan"] = json.loads(renderer_for("json").render(r.plan))
        tenants.append(entry)
    from reconciler.render.json import dump

    return dump({"exit_code": code, "tenants": tenants})
