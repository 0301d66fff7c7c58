"""Reading weights saved with torch.save (`.pth`, `.pt`, `.bin`), which are pickles, without running any code.

torch.load(weights_only=True) uses torch's restricted unpickler: it rebuilds tensors and plain containers (dict,
list, tuple, OrderedDict, numbers, strings) and refuses every other global, so a file whose pickle would call a
function (a `__reduce__` payload) is an error instead of code that runs. Released checkpoints that are pickles
(OpenUni's wusize/openuni `*.pth`) are read this way once and converted to safetensors.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mqeval.errors import UserError

if TYPE_CHECKING:
    import torch

# Where torch.save'd training checkpoints commonly keep the weights, one level down.
_NESTED_KEYS = ("state_dict", "model", "module")


def read_pth(path: str | Path) -> dict[str, "torch.Tensor"]:
    """The name -> tensor mapping of a torch.save file; anything beyond tensors and plain containers is refused."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    try:
        loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} holds more than tensors and plain containers, so it is not loaded (a pickle can "
                        f"run code; torch's weights-only reader refused it: {first})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable torch.save file ({type(exc).__name__}: {exc})") from None
    if isinstance(loaded, dict):
        for key in _NESTED_KEYS:
            if isinstance(loaded.get(key), dict) and all(torch.is_tensor(v) for v in loaded[key].values()):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not loaded:
        raise UserError(f"{path} does not hold a name -> tensor mapping (found {type(loaded).__name__})")
    bad = [str(k) for k, v in loaded.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise UserError(f"{path}: {len(bad)} entr(ies) are not tensors under string names, e.g. {', '.join(bad[:3])}")
    return dict(loaded)
