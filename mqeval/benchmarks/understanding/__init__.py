"""Understanding suites (MME-P, MMBench, SEED, MMMU, MM-Vet) scored by lmms-eval (optional extra `understanding`).

These benchmarks score the MLLM, not generated images: run them with
`mqeval run mme --model <card>` (mqeval.evaluation.understanding; adapter choice in evaluate.py).
"""
