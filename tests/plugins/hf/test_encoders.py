"""The hf_text / hf_audio / hf_visual encoders on tiny local checkpoints and the real MiniLM."""
from __future__ import annotations

import pytest
import torch

from mmtk.errors import DataError, MmtkError
from mmtk_hf.backbones import masked_pool
from mmtk_hf.encoders import HFAudioEncoder, HFTextEncoder, HFVisualEncoder

SENTENCES = ["I am so happy to see you!", "This is wonderful news, I'm delighted.",
             "The invoice is attached."]


def _ids(tokenizer, texts):
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"].sum(1)


def _grads(module):
    return [p.grad for p in module.parameters() if p.grad is not None and p.grad.abs().sum() > 0]


# ----------------------------------------------------------------------------- text

def test_minilm_text_encoder_matches_reference_pooling(minilm):
    """Real all-MiniLM-L6-v2: the frozen encoder's pooled states are the sentence embeddings."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm), local_files_only=True)
    ref = AutoModel.from_pretrained(str(minilm), local_files_only=True).eval()
    batch = tok(SENTENCES, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        h = ref(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)

    enc = HFTextEncoder(in_dim=1, latent_dim=8, model=minilm, pooling="mean").train()
    ids, lengths = _ids(tok, SENTENCES)
    assert not enc.backbone.training, "a frozen backbone stays in eval mode (no dropout)"
    with torch.no_grad():
        hidden, mask = enc.backbone(ids, lengths)
    got = torch.nn.functional.normalize(masked_pool(hidden, mask, "mean"), dim=-1)
    assert torch.allclose(got, expected, atol=1e-5)
    cos = got @ got.T
    assert cos[0, 1] > cos[0, 2] + 0.1, "happy/delighted should be closer than happy/invoice"

    out = enc(ids.unsqueeze(-1), lengths)                     # (B, T, 1) as the arrays data holds it
    assert out.shape == (3, 8)
    out.sum().backward()
    assert all(p.grad is None for p in enc.backbone.parameters()), "frozen backbone got gradients"
    assert enc.proj.weight.grad is not None


def test_minilm_layer_and_cls_choices(minilm):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm), local_files_only=True)
    ids, lengths = _ids(tok, SENTENCES[:2])
    torch.manual_seed(0)
    last = HFTextEncoder(1, 8, minilm, pooling="cls", layer=-1).eval()
    torch.manual_seed(0)
    first = HFTextEncoder(1, 8, minilm, pooling="cls", layer=1).eval()
    with torch.no_grad():
        assert not torch.allclose(last(ids, lengths), first(ids, lengths))
    with pytest.raises(MmtkError, match="layer 7 does not exist; this model has 6 layers"):
        HFTextEncoder(1, 8, minilm, layer=7)


def test_text_encoder_ignores_padding_and_fine_tunes(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_bert), local_files_only=True)
    ids, lengths = _ids(tok, ["i am so happy today", "sad"])
    enc = HFTextEncoder(1, 4, tiny_bert, pooling="mean", freeze=False).eval()
    padded = torch.cat([ids, torch.zeros(2, 5, dtype=torch.long)], 1)
    with torch.no_grad():
        assert torch.allclose(enc(ids, lengths), enc(padded, lengths), atol=1e-5)
    enc.train()
    enc(ids, lengths).pow(2).sum().backward()
    assert _grads(enc.backbone), "freeze=false must fine-tune the backbone"


def test_text_encoder_rejects_features_and_foreign_ids(tiny_bert):
    enc = HFTextEncoder(1, 4, tiny_bert)
    with pytest.raises(DataError, match="non-integer values instead of token ids"):
        enc(torch.randn(2, 5), torch.tensor([5, 3]))
    with pytest.raises(DataError, match="outside the vocabulary"):
        enc(torch.full((1, 3), 30000), torch.tensor([3]))


# ----------------------------------------------------------------------------- audio

def test_audio_encoder_frozen_shapes_and_grads(tiny_audio_model):
    enc = HFAudioEncoder(in_dim=1, latent_dim=6, model=tiny_audio_model).train()
    wave = torch.randn(3, 8000, 1)
    out = enc(wave, torch.tensor([8000, 4000, 50]))           # a clip shorter than the receptive field
    assert out.shape == (3, 6) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is None for p in enc.backbone.parameters())
    assert not enc.backbone.training


def test_audio_encoder_layer_norm_model_ignores_padding(tiny_audio_model_layernorm):
    enc = HFAudioEncoder(1, 6, tiny_audio_model_layernorm, pooling="mean").eval()
    assert enc.backbone.pads_safely
    clip = torch.randn(1, 6000)
    padded = torch.cat([clip, torch.randn(1, 3000) * 0], 1)
    with torch.no_grad():
        a = enc(clip, torch.tensor([6000]))
        b = enc(padded, torch.tensor([6000]))
    assert torch.allclose(a, b, atol=1e-4)


def test_audio_encoder_hubert_fine_tune(tmp_path, hf_helpers):
    folder = hf_helpers.save_audio_model(tmp_path / "hubert", "group", "hubert")
    enc = HFAudioEncoder(1, 6, folder, pooling="max", layer=1, freeze=False).train()
    assert type(enc.backbone.model).__name__ == "HubertModel"
    enc(torch.randn(2, 4000), torch.tensor([4000, 3000])).sum().backward()
    assert _grads(enc.backbone)


def test_audio_encoder_rejects_token_ids(tiny_audio_model):
    with pytest.raises(DataError, match="expects float waveforms"):
        HFAudioEncoder(1, 6, tiny_audio_model)(torch.ones(2, 100, dtype=torch.long))


# ----------------------------------------------------------------------------- visual

def test_visual_encoder_frames_and_lengths(tiny_vit):
    enc = HFVisualEncoder(in_dim=768, latent_dim=5, model=tiny_vit).eval()
    flat = torch.randn(2, 4, 3 * 16 * 16)
    lengths = torch.tensor([4, 2])
    with torch.no_grad():
        out = enc(flat, lengths)
        changed = flat.clone()
        changed[1, 2:] = 7.0                                   # frames past the length are padding
        assert torch.allclose(out, enc(changed, lengths), atol=1e-5)
        unflat = enc(flat.view(2, 4, 3, 16, 16), lengths)
        single = enc(flat[:, 0])                               # one image per sample
    assert out.shape == (2, 5) and torch.allclose(out, unflat, atol=1e-6) and single.shape == (2, 5)
    with pytest.raises(DataError, match="expects frames of 3x16x16"):
        enc(torch.randn(2, 4, 100), lengths)


def test_visual_encoder_mean_patches_fine_tune(tiny_vit):
    enc = HFVisualEncoder(768, 5, tiny_vit, patch_pooling="mean", freeze=False).train()
    enc(torch.randn(2, 3, 768), torch.tensor([3, 1])).sum().backward()
    assert _grads(enc.backbone)


# ----------------------------------------------------------------------------- loading errors

def test_model_folder_errors(tmp_path, tiny_audio_model, tiny_bert):
    with pytest.raises(MmtkError, match="is not a directory"):
        HFTextEncoder(1, 4, tmp_path / "nowhere")
    with pytest.raises(MmtkError, match="has no config.json"):
        HFTextEncoder(1, 4, tmp_path)
    with pytest.raises(MmtkError, match="takes 'input_values', not 'input_ids'"):
        HFTextEncoder(1, 4, tiny_audio_model)
    with pytest.raises(MmtkError, match="takes .input_ids., not .input_values., so it is not a model for audio"):
        HFAudioEncoder(1, 4, tiny_bert)
