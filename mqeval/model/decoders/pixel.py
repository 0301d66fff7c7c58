"""Pixel-space decoder: a small DiT (pixel_dit.py) or UNet (pixel_unet.py), rectified flow, no autoencoder."""
from __future__ import annotations

import torch
from torch import nn

from mqeval.errors import ConfigError
from mqeval.model.metaquery_config import DecoderConfig, PixelDecoderConfig
from mqeval.model.decoders.base import FlowDecoder, check_prediction_type
from mqeval.model.decoders.pixel_dit import PixelDiT
from mqeval.model.decoders.pixel_unet import PixelUNet


class PixelDecoder(FlowDecoder):
    family = "pixel"

    def __init__(self, config: DecoderConfig, dtype: torch.dtype | None = None):
        super().__init__(config)
        check_prediction_type(config, ("flow",))
        self.pixel_config = config.pixel or PixelDecoderConfig()
        if self.pixel_config.width % self.pixel_config.num_heads:
            raise ConfigError("decoder.pixel: width must be a multiple of num_heads")
        self.flow_shift = self.train_shift = float(self.pixel_config.flow_shift)
        network = PixelUNet if self.pixel_config.architecture == "unet" else PixelDiT
        self.dit = network(self.pixel_config).to(self.weights_dtype(dtype))
        self.freeze_unless_trained()

    @property
    def default_resolution(self) -> int:
        return self.pixel_config.image_size

    @property
    def caption_dim(self) -> int:
        return self.pixel_config.caption_dim

    @property
    def denoiser(self) -> nn.Module:
        return self.dit

    def latent_shape(self, resolution: int) -> tuple[int, int, int]:
        multiple = self.dit.size_multiple
        if resolution % multiple:
            raise ConfigError(f"resolution {resolution} is not a multiple of {multiple} "
                              f"(the {self.pixel_config.architecture}'s patch size or downsampling factor)")
        return (3, resolution, resolution)

    def encode(self, images, generator=None):
        return images

    def decode(self, latents):
        return latents

    def denoise(self, x_t, t, cond, mask):
        return self.dit(x_t.to(self.dtype), t, cond.to(self.dtype), mask)
