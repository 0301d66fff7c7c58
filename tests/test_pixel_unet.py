"""The pixel UNet decoder: shapes, caption masking, conditioning, and training/saving through MetaQuery."""
from dataclasses import replace

import pytest
import torch

from mqeval.errors import ConfigError
from mqeval.model.metaquery_config import PixelDecoderConfig
from mqeval.model.decoders.pixel_unet import PixelUNet

UNET = PixelDecoderConfig(image_size=16, width=8, depth=1, num_heads=2, caption_dim=12, architecture="unet",
                          channel_mult=(1, 2))


def _randomise_output(net: PixelUNet) -> None:
    """The output conv starts at zero (the net predicts 0 at init); give it weights so inputs can show."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and not module.weight.abs().sum():
                module.weight.normal_(0, 0.2)


def _inputs(batch=2, size=16, tokens=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, size, size, generator=g)
    ctx = torch.randn(batch, tokens, 12, generator=g)
    mask = torch.ones(batch, tokens, dtype=torch.bool)
    return x, torch.full((batch,), 500.0), ctx, mask


def test_output_shape_matches_input_and_starts_at_zero():
    torch.manual_seed(0)
    net = PixelUNet(UNET)
    for size in (16, 32):
        x, t, ctx, mask = _inputs(size=size)
        out = net(x, t, ctx, mask)
        assert out.shape == x.shape
        assert torch.count_nonzero(out) == 0  # zero-initialised output layer


def test_rejects_sides_the_downsampling_cannot_halve():
    net = PixelUNet(replace(UNET, channel_mult=(1, 2, 2)))
    x, t, ctx, mask = _inputs(size=18)
    with pytest.raises(ValueError, match="divisible by 4"):
        net(x, t, ctx, mask)


def test_caption_changes_output_and_padding_does_not():
    torch.manual_seed(0)
    net = PixelUNet(UNET).eval()
    _randomise_output(net)
    x, t, ctx, mask = _inputs()
    base = net(x, t, ctx, mask)
    assert not torch.allclose(base, net(x, t, ctx + 1.0, mask))
    mask[:, -2:] = False
    padded = net(x, t, ctx, mask)
    changed_padding = ctx.clone()
    changed_padding[:, -2:] = 100.0
    assert torch.allclose(padded, net(x, t, changed_padding, mask), atol=1e-5)


def test_metaquery_with_unet_decoder_trains_and_round_trips(tmp_path):
    from helpers_model import PROMPTS, tiny_config
    from mqeval.model.metaquery import MetaQuery

    config = tiny_config(decoder_train=True)
    config = replace(config, decoder=replace(config.decoder, pixel=UNET))
    model = MetaQuery(config, seed=0)
    # One flat colour per prompt: structure a few steps can learn (noise images cannot be)
    images = torch.tensor([[0.8, -0.5, 0.1], [-0.6, 0.2, 0.9]])[:, :, None, None].expand(-1, -1, 16, 16)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for step in range(30):
        g = torch.Generator().manual_seed(step % 3)
        loss = model.loss(PROMPTS, images, generator=g, cfg_dropout=False).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3]), losses

    model.save_pretrained(tmp_path / "ckpt")
    loaded = MetaQuery.from_pretrained(tmp_path / "ckpt")
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    with torch.no_grad():
        a = model.loss(PROMPTS, images, generator=g1, cfg_dropout=False).loss
        b = loaded.loss(PROMPTS, images, generator=g2, cfg_dropout=False).loss
    assert torch.allclose(a, b)


def test_pixel_decoder_checks_the_unet_resolution():
    from helpers_model import tiny_config
    from mqeval.model.decoders.pixel import PixelDecoder

    config = tiny_config().decoder
    decoder = PixelDecoder(replace(config, pixel=replace(UNET, channel_mult=(1, 2, 2, 2))))
    assert decoder.latent_shape(16) == (3, 16, 16)
    with pytest.raises(ConfigError, match="multiple of 8"):
        decoder.latent_shape(20)


def test_output_modulation_starts_as_a_no_op_then_lets_the_caption_move_every_pixel():
    torch.manual_seed(0)
    plain = PixelUNet(UNET).eval()
    _randomise_output(plain)
    modulated = PixelUNet(replace(UNET, output_modulation=True)).eval()
    missing, unexpected = modulated.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["out_modulation.bias", "out_modulation.weight"] and not unexpected
    x, t, ctx, mask = _inputs()
    assert torch.equal(plain(x, t, ctx, mask), modulated(x, t, ctx, mask))  # zero-initialised: same function

    with torch.no_grad():
        modulated.out_modulation.weight.normal_(0, 0.2)
    # A caption change now shifts the prediction at every pixel, not only through the attention levels.
    delta = modulated(x, t, ctx + 1.0, mask) - modulated(x, t, ctx, mask)
    assert (delta.abs().amax(dim=1) > 0).all()


def test_a_trained_model_warm_starts_with_a_new_layer(tmp_path):
    """load_saved_parameters: a checkpoint without the output modulation fills a model with it; only the named
    new parameters may be missing, and the warm-started model computes what the checkpoint did."""
    from helpers_model import PROMPTS, tiny_config
    from mqeval.errors import UserError
    from mqeval.model.metaquery import WEIGHTS_NAME, MetaQuery

    config = tiny_config(decoder_train=True)
    config = replace(config, decoder=replace(config.decoder, pixel=UNET))
    trained = MetaQuery(config, seed=0)
    _randomise_output(trained.decoder.dit)
    trained.save_pretrained(tmp_path / "ckpt")

    grown = replace(config, decoder=replace(config.decoder, pixel=replace(UNET, output_modulation=True)))
    model = MetaQuery(grown, seed=1)
    with pytest.raises(UserError, match="out_modulation"):
        model.load_saved_parameters(tmp_path / "ckpt" / WEIGHTS_NAME)
    model.load_saved_parameters(tmp_path / "ckpt" / WEIGHTS_NAME, ["decoder.dit.out_modulation."])
    images = torch.zeros(len(PROMPTS), 3, 16, 16)
    with torch.no_grad():
        a = trained.loss(PROMPTS, images, generator=torch.Generator().manual_seed(3), cfg_dropout=False).loss
        b = model.loss(PROMPTS, images, generator=torch.Generator().manual_seed(3), cfg_dropout=False).loss
    assert torch.allclose(a, b)
