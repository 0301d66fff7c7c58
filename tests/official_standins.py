"""Stand-ins for the authors' code that mqeval/model/official wraps (DeepSeek's `janus` package, Show-o's `models` and
`training.prompting_utils`): the same module, class and function names and the signatures the adapters call,
computing something trivial but deterministic from their inputs, and recording what they were given. `install`
puts them into sys.modules through pytest's monkeypatch. They model no network: a row's output depends only on that
row's inputs, as in the real models, so batch-independence is the adapters' doing.
"""
from __future__ import annotations

import math
import types
from types import SimpleNamespace

import torch

PAD, BOS, EOS = 0, 1, 2
IMAGE_START, IMAGE_GEN = "<begin_of_image>", "<｜begin▁of▁generation｜>"
SPECIAL_IDS = {IMAGE_START: 3, IMAGE_GEN: 4}
VOCAB = 16  # image-token vocabulary of the stand-in generators
WIDTH = 4  # hidden width


class Tokenizer:
    """BOS, then one id per character; the two DeepSeek image tags are single tokens."""

    def __init__(self):
        self.encoded: list[str] = []

    def encode(self, text: str) -> list[int]:
        self.encoded.append(text)
        ids, rest = [BOS], text
        while rest:
            tag = next((t for t in SPECIAL_IDS if rest.startswith(t)), None)
            ids.append(SPECIAL_IDS[tag] if tag else 10 + ord(rest[0]) % 80)
            rest = rest[len(tag):] if tag else rest[1:]
        return ids


def deepseek_template(conversations, system_prompt: str) -> str:
    """DeepSeek's SFT template (janus.utils.conversation, style DeepSeek): "Role: message" turns separated by a blank
    line (user) or the end-of-sentence token (assistant), an empty turn as "Role:"; the result stripped."""
    text = system_prompt + "\n\n" if system_prompt else ""
    for index, message in enumerate(conversations):
        content = message["content"].strip()
        separator = "\n\n" if index % 2 == 0 else "<｜end▁of▁sentence｜>"
        text += f"{message['role']}: {content}{separator}" if content else f"{message['role']}:"
    return text.strip()


class VLChatProcessor:
    sft_format = "deepseek"
    image_start_tag = IMAGE_START
    image_gen_tag = IMAGE_GEN
    pad_id = PAD
    loaded_from: list[str] = []

    def __init__(self):
        self.tokenizer = Tokenizer()
        self.templated: list[tuple] = []

    @classmethod
    def from_pretrained(cls, path):
        cls.loaded_from.append(str(path))
        return cls()

    def apply_sft_template_for_multi_turn_prompts(self, conversations, sft_format="deepseek", system_prompt=""):
        self.templated.append((conversations, sft_format, system_prompt))
        return deepseek_template(conversations, system_prompt)


class TokenEmbedding(torch.nn.Module):
    """Feature 0: 1 for a real token, 0 for padding; feature 1: the id, scaled."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, ids):
        self.seen.append(ids.clone())
        features = torch.zeros((*ids.shape, WIDTH))
        features[..., 0] = (ids != PAD).float()
        features[..., 1] = ids.float() / 100
        return features


def prefix_mean(embeds, mask=None):
    """Each row's (masked) mean of feature 0: 1 for a conditional row, small for an unconditional one."""
    real = embeds[..., 0] * (mask if mask is not None else 1)
    return real.sum(-1) / embeds.shape[1]


# -- Janus (janus.models) ----------------------------------------------------------------------------------------
class JanusLanguageModel:
    """`.model(inputs_embeds, use_cache, past_key_values)`: the cache holds each row's prompt mean; the hidden state
    carries it and the last input's feature 1 (the previous image token)."""

    def __init__(self):
        self.embedding = TokenEmbedding()
        self.calls = 0

    def get_input_embeddings(self):
        return self.embedding

    def model(self, inputs_embeds, use_cache=True, past_key_values=None):
        self.calls += 1
        mean = prefix_mean(inputs_embeds) if past_key_values is None else past_key_values
        hidden = torch.zeros((inputs_embeds.shape[0], inputs_embeds.shape[1], WIDTH))
        hidden[:, -1, 0] = mean
        hidden[:, -1, 1] = inputs_embeds[:, -1, 1]
        return SimpleNamespace(last_hidden_state=hidden, past_key_values=mean)


class JanusVQ:
    patch = 16

    def __init__(self):
        self.decoded: list[tuple] = []

    def decode_code(self, codes, shape):
        self.decoded.append((codes.clone(), list(shape)))
        count, _, grid, _ = shape
        level = codes.float().view(count, 1, grid, grid) / (VOCAB - 1) * 2 - 1
        image = torch.cat([level, -level, level / 2], dim=1)
        return image.repeat_interleave(self.patch, 2).repeat_interleave(self.patch, 3)


class JanusModel(torch.nn.Module):
    loaded_from: list[str] = []

    def __init__(self):
        super().__init__()
        self.language_model = JanusLanguageModel()
        self.gen_vision_model = JanusVQ()

    @classmethod
    def from_pretrained(cls, path):
        cls.loaded_from.append(str(path))
        return cls()

    def gen_head(self, hidden):
        # Conditional rows (mean ~1) favour high tokens, unconditional ones (mean small) low tokens.
        k = torch.arange(VOCAB, dtype=torch.float32)
        return (hidden[:, 0:1] - 0.5) * k * 0.6 + hidden[:, 1:2] * (k % 3)

    def prepare_gen_img_embeds(self, ids):
        features = torch.zeros((ids.shape[0], WIDTH))
        features[:, 1] = ids.float() / VOCAB
        return features


# -- JanusFlow (janus.janusflow.models) --------------------------------------------------------------------------
class FlowLanguageModel:
    """`.model(inputs_embeds, attention_mask, use_cache)`: the image positions' hidden state is the row's masked
    prompt mean (the prompt is everything before the time embedding and the image tokens)."""

    def __init__(self, tokens: int):
        self.embedding = TokenEmbedding()
        self.tokens = tokens
        self.masks: list[torch.Tensor] = []

    def get_input_embeddings(self):
        return self.embedding

    def model(self, inputs_embeds, attention_mask=None, use_cache=False, past_key_values=None):
        self.masks.append(attention_mask.clone())
        prompt = inputs_embeds.shape[1] - 1 - self.tokens
        mean = prefix_mean(inputs_embeds[:, :prompt], attention_mask[:, :prompt].float())
        hidden = torch.zeros_like(inputs_embeds)
        hidden[:, -self.tokens:, :] = mean[:, None, None]
        return SimpleNamespace(last_hidden_state=hidden)


class FlowEncoder(torch.nn.Module):
    def forward(self, z, t):
        return torch.nn.functional.avg_pool2d(z, 2), t[:, None].expand(-1, WIDTH) / 1000, None


class FlowDecoder(torch.nn.Module):
    """Velocity = the image positions' hidden state minus 0.5 (a constant field per row)."""

    def forward(self, hidden, skips, t_emb):
        return torch.nn.functional.interpolate(hidden, scale_factor=2.0) - 0.5


class JanusFlowModel(torch.nn.Module):
    loaded_from: list[str] = []
    grid = 2  # token grid side for the tests' 32 px images (latent 4 x 4)

    def __init__(self):
        super().__init__()
        self.language_model = FlowLanguageModel(self.grid ** 2)
        self.vision_gen_enc_model = FlowEncoder()
        self.vision_gen_enc_aligner = torch.nn.Linear(WIDTH, WIDTH)
        self.vision_gen_dec_aligner_norm = torch.nn.Identity()
        self.vision_gen_dec_aligner = torch.nn.Identity()
        self.vision_gen_dec_model = FlowDecoder()

    @classmethod
    def from_pretrained(cls, path):
        cls.loaded_from.append(str(path))
        return cls()


class SDXLVae:
    """diffusers' AutoencoderKL as the JanusFlow example uses it: config.scaling_factor and decode(z).sample."""

    def __init__(self):
        self.config = SimpleNamespace(scaling_factor=0.5)
        self.decoded: list[torch.Tensor] = []

    def decode(self, latents):
        self.decoded.append(latents.clone())
        image = torch.tanh(latents[:, :3] * 0.2)
        return SimpleNamespace(sample=image.repeat_interleave(8, 2).repeat_interleave(8, 3))

    def to(self, *args):
        return self

    def eval(self):
        return self


# -- Show-o (models, training.prompting_utils) -------------------------------------------------------------------
SHOWO_SPECIAL = {"<|pad|>": 5, "<|soi|>": 6, "<|eoi|>": 7, "<|t2i|>": 8}
MASK_TOKEN = 99


class UniversalPrompting:
    """'t2i_gen': [pad ...] <|t2i|> BOS text EOS, left-padded to max_text_len + 1, then <|soi|> image <|eoi|>."""

    def __init__(self, text_tokenizer, max_text_len=8000, special_tokens=(), ignore_id=-100, cond_dropout_prob=0.1,
                 **unexpected):
        assert not unexpected, unexpected
        self.text_tokenizer, self.max_text_len, self.special_tokens = text_tokenizer, max_text_len + 1, special_tokens
        self.sptids_dict = {token: torch.tensor([value]) for token, value in SHOWO_SPECIAL.items()}
        self.calls: list[tuple] = []

    def __call__(self, input, task):
        texts, image_ids = input
        self.calls.append((list(texts), task))
        rows = []
        for text in texts:
            ids = [SHOWO_SPECIAL["<|t2i|>"], BOS] + [10 + ord(c) % 80 for c in text] + [EOS]
            ids = [SHOWO_SPECIAL["<|pad|>"]] * (self.max_text_len - len(ids)) + ids[:self.max_text_len]
            rows.append(ids)
        text = torch.tensor(rows, device=image_ids.device)
        soi = torch.full((len(texts), 1), SHOWO_SPECIAL["<|soi|>"], device=image_ids.device)
        eoi = torch.full((len(texts), 1), SHOWO_SPECIAL["<|eoi|>"], device=image_ids.device)
        return torch.cat([text, soi, image_ids, eoi], dim=1), None


def create_attention_mask_predict_next(sequence, pad_id=128256, soi_id=128257, eoi_id=128258, rm_pad_in_image=False,
                                       return_inverse_mask=True):
    create_attention_mask_predict_next.calls.append(
        dict(sequence=sequence.clone(), pad_id=pad_id, soi_id=soi_id, eoi_id=eoi_id, rm_pad_in_image=rm_pad_in_image))
    return (sequence != pad_id).long()


create_attention_mask_predict_next.calls = []


class Showo(torch.nn.Module):
    loaded_from: list[str] = []

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(mask_token_id=MASK_TOKEN)
        self.generated: list[dict] = []

    @classmethod
    def from_pretrained(cls, path):
        cls.loaded_from.append(str(path))
        return cls()

    def t2i_generate(self, input_ids=None, uncond_input_ids=None, attention_mask=None, temperature=1.0, timesteps=18,
                     guidance_scale=0, noise_schedule=None, generator=None, config=None, **kwargs):
        self.generated.append(dict(input_ids=input_ids.clone(), uncond_input_ids=uncond_input_ids,
                                   attention_mask=attention_mask, temperature=temperature, timesteps=timesteps,
                                   guidance_scale=guidance_scale, noise_schedule=noise_schedule, config=config,
                                   **kwargs))
        count = config.model.showo.num_vq_tokens
        # Tokens from the row's prompt and the generator (one draw per token, for the whole batch, as Show-o does).
        prompt = input_ids[:, :config.dataset.preprocessing.max_seq_length + 1].sum(1, keepdim=True)
        noise = torch.randint(0, VOCAB, (input_ids.shape[0], count), generator=generator)
        return (noise + prompt + timesteps) % (VOCAB + 4)  # may exceed the codebook: the adapter clamps


class MAGVITv2(torch.nn.Module):
    loaded_from: list[str] = []

    @classmethod
    def from_pretrained(cls, path):
        cls.loaded_from.append(str(path))
        return cls()

    def decode_code(self, codes):
        side = math.isqrt(codes.shape[1])
        level = codes.float().view(-1, 1, side, side) / (VOCAB - 1) * 2 - 1
        return torch.cat([level, level / 2, -level], dim=1).repeat_interleave(16, 2).repeat_interleave(16, 3)


def get_mask_chedule(method, **kwargs):
    def schedule(ratio):
        return torch.cos(ratio * math.pi * 0.5)

    schedule.method = method
    return schedule


class PhiTokenizer:
    loaded: list[dict] = []

    @classmethod
    def from_pretrained(cls, path, **kwargs):
        cls.loaded.append(dict(path=str(path), **kwargs))
        return cls()


def _module(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


def install(monkeypatch) -> None:
    """Put the stand-ins where the adapters import the authors' code from (and Phi's tokenizer loader)."""
    import transformers

    for cls in (VLChatProcessor, JanusModel, JanusFlowModel, Showo, MAGVITv2):
        monkeypatch.setattr(cls, "loaded_from", [])
    monkeypatch.setattr(PhiTokenizer, "loaded", [])
    monkeypatch.setattr(create_attention_mask_predict_next, "calls", [])
    modules = {
        "janus": _module("janus"),
        "janus.models": _module("janus.models", VLChatProcessor=VLChatProcessor, MultiModalityCausalLM=JanusModel),
        "janus.janusflow": _module("janus.janusflow"),
        "janus.janusflow.models": _module("janus.janusflow.models", VLChatProcessor=VLChatProcessor,
                                          MultiModalityCausalLM=JanusFlowModel),
        "models": _module("models", Showo=Showo, MAGVITv2=MAGVITv2, get_mask_chedule=get_mask_chedule),
        "training": _module("training"),
        "training.prompting_utils": _module("training.prompting_utils", UniversalPrompting=UniversalPrompting,
                                            create_attention_mask_predict_next=create_attention_mask_predict_next),
    }
    for name, module in modules.items():
        monkeypatch.setitem(__import__("sys").modules, name, module)
    monkeypatch.setattr(transformers, "AutoTokenizer", PhiTokenizer)
