"""Kind `python`: your own code. The card's `python.factory` ("package.module:function") is imported and called as
factory(device=..., **python.kwargs); it returns an object with the TextToImage protocol.
mqeval_examples/tiny_python_model.py and model_zoo/tiny-python.yaml show a complete one; mqeval/model/official/
holds the baseline cards' adapters around their authors' own code (Janus, JanusFlow, Show-o)."""
from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from pathlib import Path
from typing import Any, Optional

from mqeval.contract.text_to_image import Capabilities
from mqeval.errors import ConfigError
from mqeval.model.kinds import ModelKind
from mqeval.model.kinds.hub_kind import hub_commit, locate_hub_weights
from mqeval.paths import SOURCE_CHECKOUT


def _local_root(package: str) -> Optional[str]:
    """The folder a top-level `package` is taken from when it lies in the working directory or in mqeval's source
    checkout (in that order, as `python -m` would put the working directory first). The same rule holds for the
    `mqeval` console script, `python -m mqeval` and torchrun workers, and a same-named package installed in
    site-packages (tqdm-multiprocess installs one called `examples`) cannot shadow the user's module."""
    for root in [os.getcwd()] + ([str(SOURCE_CHECKOUT)] if SOURCE_CHECKOUT else []):
        if importlib.machinery.PathFinder.find_spec(package, [root]) is not None:
            return root
    return None


def import_factory(spec: str, card_name: str):
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"model_zoo/{card_name}.yaml: python.factory must read 'package.module:function', "
                          f"got '{spec}'")
    package = module_name.split(".")[0]
    root = _local_root(package)
    if root is not None:
        loaded = sys.modules.get(package)
        origin = getattr(loaded, "__file__", None) or ""
        if loaded is not None and not Path(origin).resolve().is_relative_to(Path(root).resolve()):
            raise ConfigError(f"model '{card_name}': '{package}' in {root} cannot be imported, a package of that "
                              f"name is already loaded from {origin or 'elsewhere'}; rename your module")
        if sys.path[:1] != [root]:
            sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"model '{card_name}': cannot import '{module_name}' ({exc}); put it in the working "
                          "directory or on PYTHONPATH") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"model '{card_name}': '{module_name}' has no callable '{attr}'")
    return factory


class PythonKind(ModelKind):
    def locate_weights(self, card) -> Optional[Path]:
        """The card's `check` first (so a model that cannot run here downloads nothing), then its hub weights, found
        or downloaded now (before any worker starts); the first is the checkpoint that the run records."""
        if card.python.check:
            import_factory(card.python.check, card.name)()
        return next(iter(self.weight_folders(card).values()), None)

    def weight_folders(self, card) -> dict[str, Path]:
        return {role: locate_hub_weights(weights, f"python weights '{role}' of model '{card.name}', hub id",
                                         weights.files)
                for role, weights in card.python.weights.items()}

    def fingerprint(self, card, weights: Optional[Path]) -> dict[str, Any]:
        out = super().fingerprint(card, weights)
        if not card.python.weights:
            del out["config"]["weights"]  # as before cards could name weights: their runs still resume
            return out
        return {**out, "revisions": {role: hub_commit(folder) for role, folder in self.weight_folders(card).items()}}

    def load(self, card, weights: Optional[Path], device: str) -> Any:
        extra: dict[str, Any] = {}
        if card.python.weights:
            if "weights" in card.python.kwargs:
                raise ConfigError(f"model_zoo/{card.name}.yaml: python.kwargs cannot hold `weights` (mqeval passes "
                                  "the folders of python.weights under that name)")
            extra["weights"] = self.weight_folders(card)
        model = import_factory(card.python.factory, card.name)(device=device, **extra, **card.python.kwargs)
        stated = getattr(model, "capabilities", None)
        expected = self.capabilities(card)
        if isinstance(stated, Capabilities) and stated != expected:
            raise ConfigError(f"model '{card.name}': the object's capabilities {stated} differ from the card's "
                              f"{expected}; state them in the card's `capabilities:` block")
        return model


KIND = PythonKind()
