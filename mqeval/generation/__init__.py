"""Image generation for benchmarks: resolved settings, deterministic work units, sharding, resume, atomic writes.

`mqeval.generation.sharded_writer.generate` is the only place in mqeval that shards work across processes and writes
benchmark images. The modules here import torch only inside functions.
"""
