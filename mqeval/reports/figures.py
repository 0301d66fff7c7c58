"""Pictures written next to a report: ablation bar charts with their intervals, and image grids across models."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Optional, Sequence

from mqeval.extras import require
from mqeval.fileio import atomic_path
from mqeval.results.run import Run
from mqeval.reports.table_report import TableReport


def ablation_bars(report: TableReport, out_path: Path) -> Optional[Path]:
    """One panel per metric: measured bars with 95% CI whiskers, published values as black ticks."""
    data = report.data
    if not len(data) or "column" not in data:
        return None
    matplotlib = require("matplotlib", "reports", "Plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(dict.fromkeys(data["column"]))
    rows = list(report.frame.index)
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3.2), squeeze=False)
    for ax, column in zip(axes[0], columns):
        part = data[data["column"] == column]
        title = part["title"].iloc[0]
        up = bool(part["higher_is_better"].iloc[0])
        measured = part[part["status"] == "measured"] if "status" in part else part
        first_variant = measured["variant"].iloc[0] if len(measured) and "variant" in measured else None
        if first_variant is not None:
            measured = measured[measured["variant"] == first_variant]
        xs = range(len(rows))
        values, lows, highs = [], [], []
        for label in rows:
            hit = measured[measured["row"] == label]
            value = float(hit["measured"].iloc[0]) if len(hit) else math.nan
            lo = hit["ci_low"].iloc[0] if len(hit) and hit["ci_low"].notna().iloc[0] else value
            hi = hit["ci_high"].iloc[0] if len(hit) and hit["ci_high"].notna().iloc[0] else value
            values.append(value)
            lows.append(value - float(lo))
            highs.append(float(hi) - value)
        ax.bar(xs, values, yerr=[lows, highs], capsize=3, color="#6b8fc7", label="measured (95% CI)")
        if "published" in part:
            pub = [part[part["row"] == label]["published"].iloc[0] if len(part[part["row"] == label]) else math.nan
                   for label in rows]
            ax.scatter(xs, pub, marker="_", s=300, color="black", zorder=3, label="paper")
        ax.set_title(f"{title} {'↑' if up else '↓'}", fontsize=9)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(rows, rotation=35, ha="right", fontsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(report.title, fontsize=9)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out_path


def image_grid(runs: Sequence[Run], out_path: Path, max_prompts: int = 4, cell: int = 160) -> Optional[Path]:
    """Rows = the first prompts all runs share, columns = runs (first image of each sample), captioned."""
    from PIL import Image, ImageDraw

    runs = [r for r in runs if r.samples]
    if not runs:
        return None
    shared = set.intersection(*({s["sample_id"] for s in r.samples} for r in runs))
    order = [s["sample_id"] for s in runs[0].samples if s["sample_id"] in shared][:max_prompts]
    if not order:
        return None
    label_w, head_h = 220, 32
    grid = Image.new("RGB", (label_w + cell * len(runs), head_h + cell * len(order)), "white")
    draw = ImageDraw.Draw(grid)
    font = _font(12)
    found = 0
    for j, run in enumerate(runs):
        draw.text((label_w + j * cell + 4, 3), f"{run.card}"[:24], fill="black", font=font)
        draw.text((label_w + j * cell + 4, 17), f"{run.run_id}"[:24], fill="gray", font=font)
        by_id = {s["sample_id"]: s for s in run.samples}
        for i, sid in enumerate(order):
            images = by_id[sid].get("images") or []
            path = run.path / images[0] if images else None
            if path is not None and path.is_file():
                with Image.open(path) as img:
                    grid.paste(img.convert("RGB").resize((cell, cell)), (label_w + j * cell, head_h + i * cell))
                found += 1
            else:
                draw.text((label_w + j * cell + 4, head_h + i * cell + cell // 2), "no image", fill="red", font=font)
    for i, sid in enumerate(order):
        prompt = str(next(s for s in runs[0].samples if s["sample_id"] == sid).get("prompt", sid))
        lines = textwrap.wrap(prompt, 30)[:8]
        draw.multiline_text((4, head_h + i * cell + 4), "\n".join(lines), fill="black", font=font)
    if not found:
        return None
    with atomic_path(out_path) as tmp:
        grid.save(tmp, format="PNG")
    return out_path


def _font(size: int):
    from PIL import ImageFont

    try:  # Pillow >= 10.1 scales its built-in font (needs FreeType); older ones have one bitmap size
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def _spread_over_tags(samples: Sequence[dict], count: int) -> list[dict]:
    """Up to `count` samples, taking the first unused one of each tag in turn (so every task shows)."""
    by_tag: dict[str, list[dict]] = {}
    for sample in samples:
        by_tag.setdefault(str(sample.get("tag", "")), []).append(sample)
    chosen: list[dict] = []
    while len(chosen) < count and any(by_tag.values()):
        for queue in by_tag.values():
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen


def sample_grid(samples: Sequence[dict], root: Path, out_path: Path, max_prompts: int = 12,
                cell: int = 96) -> Optional[Path]:
    """One run's prompts (spread over its tasks) by rows, all images of each prompt by columns; `samples` are its
    samples.jsonl rows, whose image paths are relative to `root`.

    A green or red frame marks each image the benchmark judged correct or wrong, when the samples record says."""
    from PIL import Image, ImageDraw

    chosen = _spread_over_tags(list(samples), max_prompts)
    if not chosen:
        return None
    columns = max(len(s.get("images") or []) for s in chosen)
    label_w, pad = 300, 4
    font = _font(13)
    grid = Image.new("RGB", (label_w + (cell + pad) * columns, (cell + pad) * len(chosen) + pad), "white")
    draw = ImageDraw.Draw(grid)
    found = 0
    for i, sample in enumerate(chosen):
        top = pad + i * (cell + pad)
        prompt = str(sample.get("prompt", sample.get("sample_id", "")))
        lines = textwrap.wrap(prompt, 36) or [""]
        label = "\n".join(lines[:4] + [f"[{sample.get('tag', '')}]"])
        draw.multiline_text((pad, top + 2), label, fill="black", font=font)
        verdicts = sample.get("correct") or []
        for j, rel in enumerate(sample.get("images") or []):
            left = label_w + j * (cell + pad)
            path = Path(root) / rel
            if not path.is_file():
                draw.text((left + 4, top + cell // 2), "missing", fill="red", font=font)
                continue
            try:
                with Image.open(path) as img:
                    grid.paste(img.convert("RGB").resize((cell, cell), Image.NEAREST), (left, top))
            except (OSError, ValueError, Image.DecompressionBombError):  # scoring counted it already
                draw.text((left + 4, top + cell // 2), "unreadable", fill="red", font=font)
                continue
            found += 1
            if j < len(verdicts):
                colour = (30, 160, 60) if verdicts[j] else (200, 40, 40)
                draw.rectangle((left - 2, top - 2, left + cell + 1, top + cell + 1), outline=colour, width=2)
    if not found:
        return None
    with atomic_path(out_path) as tmp:
        grid.save(tmp, format="PNG")
    return out_path


def write_figures(
    reports: Sequence[TableReport], out_dir: Path, stem: str, ablation_tables: Sequence[str] = ()
) -> None:
    """Bar charts for the named reports and image grids of every report's runs, grouped by benchmark."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for report in reports:
        if report.name in ablation_tables:
            path = ablation_bars(report, out_dir / f"{stem}_{report.name}_bars.png")
            if path:
                report.figures.append(path)
        by_benchmark: dict[str, list[Run]] = {}
        for run in report.runs:
            by_benchmark.setdefault(run.benchmark_name, []).append(run)
        for benchmark, runs in sorted(by_benchmark.items()):
            path = image_grid(runs, out_dir / f"{stem}_{report.name}_{benchmark}_grid.png")
            if path:
                report.figures.append(path)
