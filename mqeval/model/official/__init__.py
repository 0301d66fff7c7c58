"""Adapters around models' own code: the `python`-kind factories of the baseline cards janus-1.3b, janusflow-1.3b
and show-o, whose weights only their authors' code loads (transformers and diffusers do not).

Each adapter imports the authors' package only when a card is loaded (it is no mqeval dependency, and it was
written for older library versions), and fails with one line that says what to install when it is missing. The
adapters follow the authors' inference scripts at the commits named below (prompt format, classifier-free guidance
layout, sampling settings, pixel conversion) and add what mqeval guarantees: image i depends only on its prompt and
generators[i]. They were written by reading that code and have not been run against it here (no GPU, no hub access):
tests/test_official_adapters.py drives them through stand-ins exposing the same API. docs/official-code.md says more.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Sequence

from mqeval.errors import UserError


class MissingOfficialCodeError(UserError):
    """A baseline's own code (not an mqeval dependency) is not importable."""


@dataclass(frozen=True)
class OfficialCode:
    """Where a model's own code comes from, and how a user makes it importable."""

    name: str
    repository: str  # GitHub owner/name
    commit: str  # the snapshot the adapter was written against
    install: str  # the command(s), with {url} and {commit} filled in by `how_to_install`
    needs: str  # the library versions it was written for

    def how_to_install(self) -> str:
        return self.install.format(url=f"https://github.com/{self.repository}", commit=self.commit)

    def load(self, module: str, names: Sequence[str]) -> ModuleType:
        """Import `module` of this code; it must define `names` (a same-named module of another project does not).
        Code written for older libraries may fail while importing (not only with ImportError): one line says so."""
        try:
            found = importlib.import_module(module)
        except ImportError as exc:
            problem = f"`{module}` is not importable ({exc})"
        except Exception as exc:  # e.g. transformers 5 rejecting the config classes of code written for 4.x
            problem = (f"`{module}` fails to import with {library_versions()} ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''})")
        else:
            missing = [name for name in names if not hasattr(found, name)]
            if not missing:
                return found
            problem = f"the importable `{module}` ({getattr(found, '__file__', '?')}) has no {', '.join(missing)}"
        raise MissingOfficialCodeError(
            f"{self.name} runs on its authors' code ({self.repository}), and {problem}: {self.how_to_install()}; "
            f"{self.needs}")


def library_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("transformers", "diffusers"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found) or "these libraries"


def device_generator(generator: Any, device: Any):
    """A generator on the model's device, seeded from the image's own CPU generator: samplers that draw on the
    device take it, and the image still depends only on generators[i]."""
    import torch

    seed = int(torch.randint(0, 2**62, (), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def to_pil_images(pixels: Any, rounding: bool) -> list:
    """(n, 3, H, W) in [-1, 1] -> uint8 RGB PIL images, as the authors' scripts convert: `rounding` to the nearest
    grey level (torchvision's save_image) or truncating (numpy's astype(uint8))."""
    import numpy as np
    import torch
    from PIL import Image

    scaled = (pixels.float().cpu().clamp(-1, 1) + 1) / 2 * 255
    scaled = (scaled + 0.5 if rounding else scaled).clamp(0, 255).to(torch.uint8)
    return [Image.fromarray(np.ascontiguousarray(image.permute(1, 2, 0).numpy())) for image in scaled]
