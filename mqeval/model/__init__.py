"""The MetaQuery model: backbones, queries, connectors, decoders, the module, pipeline and checkpoint I/O."""
