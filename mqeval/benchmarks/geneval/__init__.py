"""GenEval (Ghosh et al. 2023): `benchmark.py` the plug-in (samples, the official layout, scoring through the
detector and the CLIP colour classifier), `rules.py` the official per-task rules, `layout.py` the folder layout
its scorer reads, `argsort.py` numpy's tie order that the official colour rule depends on."""
