"""A randomly initialised, locally saved torch-fidelity InceptionV3 weights file (what
`feature_extractor_weights_path` loads: a plain state dict of FeatureExtractorInceptionV3)."""
from __future__ import annotations

from pathlib import Path
from unittest import mock


def save_random_inception(path: Path, seed: int = 0) -> Path:
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    # build the module without its download/load step, then keep its random init
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None):
        torch.manual_seed(seed)
        model = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    # default init makes activations vanish through 90 layers; calibrating batch norms on noise keeps
    # features O(1), so FIDs are O(1) numbers and tolerances mean something
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
            module.train()
    with torch.no_grad():
        model((torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 255).to(torch.uint8))
    model.eval()
    torch.save(model.state_dict(), path)
    return path


def random_image(rng, size=(72, 56)):
    """A flat random colour plus noise (so images differ in mean and texture)."""
    import numpy as np
    from PIL import Image

    base = rng.integers(0, 255, 3)
    noise = rng.integers(0, 60, (size[1], size[0], 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def torch_fidelity_fid(gen, ref, weights, folder: Path) -> float:
    """torch-fidelity called directly on the same images after the same preprocessing, saved losslessly."""
    import torch_fidelity
    from PIL import Image

    from mqeval.scorers.fid import preprocess

    dirs = []
    for name, images in (("gen", gen), ("ref", ref)):
        d = folder / name
        d.mkdir(parents=True)
        for i, image in enumerate(images):
            Image.fromarray(preprocess(image).permute(1, 2, 0).numpy()).save(d / f"{i:05d}.png")
        dirs.append(str(d))
    return torch_fidelity.calculate_metrics(
        input1=dirs[0], input2=dirs[1], fid=True, cuda=False, cache=False, verbose=False, batch_size=16,
        save_cpu_ram=True, feature_extractor_weights_path=str(weights))["frechet_inception_distance"]


def shrink_inception(monkeypatch) -> None:
    """torch-fidelity resizes every input to 299 px inside the model; 75 px (the smallest it accepts) keeps CPU
    tests fast. A class attribute, so our path and torch-fidelity's direct call both see it."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    monkeypatch.setattr(FeatureExtractorInceptionV3, "INPUT_IMAGE_SIZE", 75)
