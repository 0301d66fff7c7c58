"""The results store: one run = one folder with results.json + samples.jsonl (schema: mqeval.results.schema)."""
