"""Probe SmolLM2-135M-Instruct's colour knowledge of everyday objects (greedy answer and forced choice).

Usage: python scripts/probe_smollm2_colours.py [--out model_zoo/research/metaquery-smol/smollm2_colour_probe.json]
Greedy: the chat model is asked "What colour is X? Answer with one word." and the first colour word of its greedy
answer is taken. Forced choice: the log-probability of each colour word as the continuation of
"The colour of X is" (plain text, no chat template) and, separately, after the chat prompt; the argmax is the answer.
"""
from __future__ import annotations

import argparse
import json

from mqeval.train.knowledge_probe import OBJECT_COLOURS, probe

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = probe(OBJECT_COLOURS)
    for row in rows:
        print(f"{row['object']:<22} truth={row['truth']:<7} greedy={row['greedy']!s:<8} "
              f"chat_choice={row['chat_choice']:<7} text_choice={row['text_choice']:<7} raw={row['raw']!r}")
    for key in ("greedy", "chat_choice", "text_choice"):
        print(key, sum(r[key] == r["truth"] for r in rows), "/", len(rows))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=1)
