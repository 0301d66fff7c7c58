"""The evaluators: resolve a run plan, generate or ask, score, record. Only the command-line modules import this."""
