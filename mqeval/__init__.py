"""mqeval: build, train and benchmark MetaQuery-style unified multimodal models."""

__version__ = "0.1.0"
