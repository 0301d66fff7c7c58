"""Render table reports as terminal text, Markdown, LaTeX, CSV (tidy, one line per cell) or a standalone HTML page."""
from __future__ import annotations

import html
from typing import Callable, Sequence

from mqeval.extras import require
from mqeval.registry import Registry
from mqeval.reports.table_report import TableReport

FORMATS = ("terminal", "markdown", "latex", "csv", "html")


def _rows(report: TableReport) -> tuple[list[str], list[list[str]]]:
    frame = report.frame
    header = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    body = [[str(index)] + ["" if v is None else str(v) for v in row]
            for index, row in zip(frame.index, frame.itertuples(index=False))]
    return header, body


def _two_level(frame):
    """'GenEval ↑ ours [v1]' -> ('GenEval ↑', 'ours [v1]'): metric over kind, so wide tables stay readable."""
    pd = require("pandas", "reports", "Rendering tables")

    def split(name: str) -> tuple[str, str]:
        for arrow in ("↑", "↓"):
            head, sep, kind = name.partition(f" {arrow} ")
            if sep:
                return f"{head} {arrow}", kind
        return name, ""

    out = frame.copy()
    out.columns = pd.MultiIndex.from_tuples([split(str(c)) for c in frame.columns])
    return out


def render_terminal(reports: Sequence[TableReport]) -> str:
    parts = []
    for report in reports:
        parts.append(report.title)
        parts.append(_two_level(report.frame).to_string())
        parts += [f"  note: {n}" for n in report.notes]
        parts += [f"  figure: {p}" for p in report.figures]
        parts.append("")
    return "\n".join(parts)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(reports: Sequence[TableReport]) -> str:
    parts = []
    for report in reports:
        header, body = _rows(report)
        parts.append(f"### {_md_cell(report.title)}\n")
        parts.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
        parts.append("|" + "|".join("---" for _ in header) + "|")
        parts += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in body]
        parts.append("")
        parts += [f"- {_md_cell(n)}" for n in report.notes]
        parts += [f"![{_md_cell(p.stem)}]({p.name})" for p in report.figures]
        parts.append("")
    return "\n".join(parts)


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "↑": r"$\uparrow$", "↓": r"$\downarrow$", "Δ": r"$\Delta$", "—": "---", "±": r"$\pm$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def render_latex(reports: Sequence[TableReport]) -> str:
    parts = []
    for report in reports:
        header, body = _rows(report)
        parts.append(r"\begin{table}[t]")
        parts.append(r"\centering\small")
        parts.append(r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}")
        parts.append(r"\hline")
        parts.append(" & ".join(latex_escape(h) for h in header) + r" \\")
        parts.append(r"\hline")
        parts += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in body]
        parts.append(r"\hline")
        parts.append(r"\end{tabular}")
        caption_notes = "".join(" " + latex_escape(n) for n in report.notes)
        parts.append(r"\caption{" + latex_escape(report.title) + caption_notes + "}")
        parts.append(r"\end{table}")
        parts.append("")
    return "\n".join(parts)


def render_csv(reports: Sequence[TableReport]) -> str:
    """The tidy data of every table (one line per row x column x variant), with the table's title as a column."""
    pd = require("pandas", "reports", "Rendering tables")

    frames = []
    for report in reports:
        data = report.data.copy() if len(report.data) else report.frame.reset_index()
        data.insert(0, "report", report.title)
        frames.append(data)
    return pd.concat(frames, ignore_index=True).to_csv(index=False) if frames else ""


def render_html(reports: Sequence[TableReport]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>mqeval report</title>',
        "<style>table{border-collapse:collapse;font:13px sans-serif}td,th{border:1px solid #bbb;padding:2px 6px}"
        "p.note{font:12px sans-serif;color:#444}</style></head><body>",
    ]
    for report in reports:
        parts.append(f"<h2>{html.escape(report.title)}</h2>")
        parts.append(report.frame.to_html(escape=True, border=0))
        parts += [f'<p class="note">{html.escape(n)}</p>' for n in report.notes]
        parts += [f'<img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}">' for p in report.figures]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


RENDERERS: Registry[Callable[[Sequence[TableReport]], str]] = Registry("report format")
for _name, _fn in zip(FORMATS, (render_terminal, render_markdown, render_latex, render_csv, render_html)):
    RENDERERS.register(_name, _fn)


def render(reports: Sequence[TableReport], fmt: str) -> str:
    return RENDERERS.get(fmt)(reports)
