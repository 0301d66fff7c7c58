"""Reports: the paper's Tables 1-7 and any set of runs as pandas tables, with bootstrap CIs and paired comparisons.

    mqeval report paper [--table N] [--runs DIR] [--format terminal|markdown|latex|csv|html] [--out FILE]
    mqeval report runs DIR...
    mqeval compare RUN_A RUN_B

- specs.py: declarative table specs (published rows, columns = benchmark + metric + direction, small-scale twins).
- published.py: results/paper/*.csv rows with the labels that model cards name.
- runs.py: run folders (results.json + samples.jsonl) and what makes two runs comparable (CompatKey).
- stats.py: bootstrap CIs and paired bootstrap, recomputing metrics with the benchmark plug-in's `aggregate`.
- intervals.py: a run's CIs (or why there are none: FID-like plug-in, other benchmark version, no samples).
- columns.py: one column's paper / measured / difference / paired-vs-reference cells and the never-one-column rule.
- paper_table.py / run_tables.py: the tables (table_report.TableReport); render.py: the five formats;
  figures.py: bar charts with intervals, image grids of the same prompts across models; api.py: what commands do.
Reports read only the results store; they never generate or score.
"""
