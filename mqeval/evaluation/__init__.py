"""The evaluation orchestrator: resolve a run plan, generate or answer, score, record (used by the CLI only)."""
