"""OpenUni's connector built by OpenUni's own classes (wusize/OpenUni @ d1703fc), with what it computes, for
tests/test_openuni_connector.py to compare mqeval's with.

    PYTHONPATH=.official/metaquery:.official/openuni-code python scripts/openuni_reference.py OUT

Side environment as for scripts/official_metaquery_reference.py (transformers 4.49: OpenUni's connector module
imports helpers transformers 5 removed). OpenUni's model class (src/models/openuni/internvl3_sana_hf.py) needs
xtuner and mmengine only to build its parts from configs; the connector and projections are built here the way its
__init__ does (ConnectorEncoder(ConnectorConfig(...)) and nn.Linear projectors per proj_type), with its random
initialisation, then every weight is moved off its initial value. For each proj_type OUT/<proj_type>.safetensors
holds the weights under OpenUni's names (connector.*, projector.*), an input of 2 x 6 query states and the output
of llm2dit on it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

LLM_WIDTH, CAPTION_WIDTH = 64, 48
SHAPES = {  # proj_type: the connector's hidden size, as OpenUni's asserts require
    "enc_proj": LLM_WIDTH, "proj_enc": CAPTION_WIDTH, "proj_enc_proj": 32,
}


def build(proj_type: str):
    from src.models.connector import ConnectorConfig, ConnectorEncoder

    width = SHAPES[proj_type]
    torch.manual_seed(0)
    connector = ConnectorEncoder(ConnectorConfig(hidden_size=width, intermediate_size=80, num_hidden_layers=2,
                                                 num_attention_heads=2, _attn_implementation="eager"))
    if proj_type == "enc_proj":
        projector = nn.Linear(width, CAPTION_WIDTH)
    elif proj_type == "proj_enc":
        projector = nn.Linear(LLM_WIDTH, width)
    else:
        projector = nn.ModuleList([nn.Linear(LLM_WIDTH, width), nn.Linear(width, CAPTION_WIDTH)])
    model = nn.Module()
    model.connector, model.projector = connector, projector
    return model.eval()


def llm2dit(model, proj_type: str, x: torch.Tensor) -> torch.Tensor:
    """internvl3_sana_hf.py's llm2dit."""
    if proj_type == "proj_enc":
        return model.connector(model.projector(x))
    if proj_type == "enc_proj":
        return model.projector(model.connector(x))
    return model.projector[1](model.connector(model.projector[0](x)))


def main(out: Path) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    for proj_type in SHAPES:
        model = build(proj_type)
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn(param.shape, generator=generator) * 0.1)
            x = torch.randn(2, 6, LLM_WIDTH, generator=generator)
            y = llm2dit(model, proj_type, x)
        tensors = {name: p.detach().contiguous() for name, p in model.state_dict().items()}
        save_file({**tensors, "input": x, "output": y.contiguous()}, str(out / f"{proj_type}.safetensors"))
        print(f"wrote {out / proj_type}.safetensors: {len(tensors)} weights, output {tuple(y.shape)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
