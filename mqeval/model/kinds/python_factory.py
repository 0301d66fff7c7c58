"""Kind `python`: your own code. The card's `python.factory` ("package.module:function") is imported and called as
factory(device=..., **python.kwargs); it returns an object with the TextToImage protocol. examples/my_model.py and
model_zoo/tiny-python.yaml show a complete one."""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any, Optional

from mqeval.contract.text_to_image import Capabilities
from mqeval.errors import ConfigError
from mqeval.model.kinds import ModelKind
from mqeval.paths import SOURCE_CHECKOUT


def import_factory(spec: str, card_name: str):
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"model_zoo/{card_name}.yaml: python.factory must read 'package.module:function', "
                          f"got '{spec}'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # As `python -m` would: the working directory, then mqeval's source checkout (where examples/ lives).
        candidates = [os.getcwd()] + ([str(SOURCE_CHECKOUT)] if SOURCE_CHECKOUT else [])
        roots = [r for r in candidates if r not in sys.path]
        if not roots or exc.name != module_name.split(".")[0]:
            raise ConfigError(f"model '{card_name}': cannot import '{module_name}' ({exc}); is it on PYTHONPATH?") \
                from None
        sys.path.extend(roots)
        return import_factory(spec, card_name)
    except ImportError as exc:
        raise ConfigError(f"model '{card_name}': cannot import '{module_name}' ({exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"model '{card_name}': '{module_name}' has no callable '{attr}'")
    return factory


class PythonKind(ModelKind):
    def load(self, card, weights: Optional[Path], device: str) -> Any:
        model = import_factory(card.python.factory, card.name)(device=device, **card.python.kwargs)
        stated = getattr(model, "capabilities", None)
        expected = self.capabilities(card)
        if isinstance(stated, Capabilities) and stated != expected:
            raise ConfigError(f"model '{card.name}': the object's capabilities {stated} differ from the card's "
                              f"{expected}; state them in the card's `capabilities:` block")
        return model


KIND = PythonKind()
