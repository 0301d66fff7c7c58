"""The pixel decoder's flow_shift moves both the training sigmas and the sampling schedule towards high noise."""
from dataclasses import replace

import torch

from mqeval.model.decoders.base import shift_sigmas


def _decoder(shift: float):
    from helpers_model import tiny_config
    from mqeval.model.decoders.pixel import PixelDecoder

    config = tiny_config().decoder
    return PixelDecoder(replace(config, pixel=replace(config.pixel, flow_shift=shift)))


def test_shift_formula_keeps_the_ends_and_raises_the_middle():
    s = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.equal(shift_sigmas(s, 1.0), s)
    assert torch.allclose(shift_sigmas(s, 3.0), torch.tensor([0.0, 0.5, 0.75, 1.0]))


def _training_sigmas(decoder, n=512) -> torch.Tensor:
    seen = []

    def record(x_t, t, cond, mask):
        seen.append(t / decoder.num_train_timesteps)
        return torch.zeros_like(x_t)

    decoder.denoise = record
    images = torch.zeros(n, 3, 16, 16)
    decoder.loss(images, torch.zeros(n, 2, decoder.caption_dim), torch.ones(n, 2, dtype=torch.bool),
                 torch.Generator().manual_seed(0))
    return seen[0]


def test_training_sigmas_follow_the_shift():
    plain, shifted = _training_sigmas(_decoder(1.0)), _training_sigmas(_decoder(3.0))
    # Same uniform draws (same generator), mapped through the shift.
    assert torch.allclose(shifted, shift_sigmas(plain, 3.0), atol=1e-6)
    assert (shifted > 0.5).float().mean() > 0.7 > (plain > 0.5).float().mean()


def test_sampling_schedule_follows_the_shift():
    decoder = _decoder(3.0)
    scheduler = decoder.make_scheduler("flow-euler")
    decoder.set_timesteps(scheduler, 4, "cpu")
    expected = shift_sigmas(torch.tensor([1.0, 0.75, 0.5, 0.25]), 3.0)
    assert torch.allclose(scheduler.sigmas[:4].float(), expected, atol=1e-5)


def test_the_shift_is_not_architecture():
    """The shift is a schedule setting, not architecture: fine-tuning under a new shift starts from old weights."""
    from helpers_model import tiny_config
    from mqeval.model.loading import _architecture, _differences

    config = tiny_config()
    shifted = replace(config, decoder=replace(config.decoder, pixel=replace(config.decoder.pixel, flow_shift=3.0)))
    assert _differences(_architecture(config), _architecture(shifted)) == []
