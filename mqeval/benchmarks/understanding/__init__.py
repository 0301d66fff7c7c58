"""Understanding suites (MME-P, MMBench, SEED, MMMU, MM-Vet) scored by lmms-eval (optional extra `understanding`).

These benchmarks score the MLLM, not generated images: run them with
`python -m mqeval.benchmarks.understanding --benchmark mme --model <card>` (see evaluate.py).
"""
