"""Benchmark plug-ins (Python classes, registered lazily) and benchmark specs (benchmarks/*.yaml)."""
from __future__ import annotations

from pathlib import Path

from mqeval.benchmarks.base import Benchmark, BenchmarkSpec, SpecPlugin
from mqeval.dataclass_io import from_dict, load_yaml
from mqeval.errors import ConfigError, UnknownNameError, UserError
from mqeval.paths import BENCHMARK_SPECS_DIR
from mqeval.registry import Registry

# Plug-in classes by key; "module:attr" strings keep `mqeval ls` free of heavy imports.
PLUGINS: Registry[type[SpecPlugin]] = Registry("benchmark plug-in")
PLUGINS.register("shapes", "mqeval.benchmarks.shapes.benchmark:ShapesBenchmark")
PLUGINS.register("shapes-knowledge", "mqeval.benchmarks.shapes.knowledge:ShapesKnowledgeBenchmark")
PLUGINS.register("wise", "mqeval.benchmarks.wise.benchmark:WiseBenchmark")
PLUGINS.register("commonsense-t2i", "mqeval.benchmarks.commonsense_t2i.benchmark:CommonsenseT2IBenchmark")
PLUGINS.register("dpg-bench", "mqeval.benchmarks.dpg_bench.benchmark:DPGBenchmark")
PLUGINS.register("geneval", "mqeval.benchmarks.geneval.benchmark:GenEvalBenchmark")
PLUGINS.register("mjhq-fid", "mqeval.benchmarks.fid.benchmark:MJHQFidBenchmark")
PLUGINS.register("coco-fid", "mqeval.benchmarks.fid.benchmark:CocoFidBenchmark")
PLUGINS.register("lmms-eval", "mqeval.benchmarks.understanding.benchmark:LmmsEvalSuite")


def spec_paths(specs_dir: Path = BENCHMARK_SPECS_DIR) -> dict[str, Path]:
    return {p.stem: p for p in sorted(specs_dir.glob("*.yaml"))}


def load_spec(name: str, specs_dir: Path = BENCHMARK_SPECS_DIR) -> BenchmarkSpec:
    paths = spec_paths(specs_dir)
    if name not in paths:
        raise UnknownNameError("benchmark", name, paths)
    spec = from_dict(BenchmarkSpec, load_yaml(paths[name]), f"benchmarks/{name}.yaml")
    if spec.name != name:
        raise UnknownNameError("benchmark", name, paths) from None
    return spec


def load_plugin(name: str, specs_dir: Path = BENCHMARK_SPECS_DIR) -> SpecPlugin:
    """The plug-in of any benchmark: an image benchmark or an understanding suite, as its spec says."""
    return plugin_of(load_spec(name, specs_dir))


def plugin_of(spec: BenchmarkSpec) -> SpecPlugin:
    cls = PLUGINS.get(spec.plugin)
    if cls.evaluator != spec.evaluator:
        raise ConfigError(f"benchmarks/{spec.name}.yaml: evaluator '{spec.evaluator}', but its plug-in "
                          f"'{spec.plugin}' is run as '{cls.evaluator}'")
    return cls(spec)


def load_benchmark(name: str, specs_dir: Path = BENCHMARK_SPECS_DIR) -> Benchmark:
    """An image benchmark (one that generates and scores images)."""
    plugin = load_plugin(name, specs_dir)
    if not isinstance(plugin, Benchmark):
        raise UserError(f"{name} is an understanding suite: the model answers its questions itself, so it has no "
                        f"images to generate or score; run it with `mqeval run {name} --model <card>`")
    return plugin
