"""Slow: QAG converts Hugging Face transformers built from configs with random weights (no download).

BERT, DistilBERT, GPT-2 (its Conv1D is an addmm), ViT, a Whisper encoder (whisper-tiny's widths, shorter
input) and a T5-small-sized encoder-decoder: every GEMM gets slots (attention through SDPA included),
the float bypass matches eager, QAG's rows equal extract_workload's, and w8a8 runs. Skipped when
transformers is not importable (it needs a matching torch, e.g. the separate venv of the README)::

    python -m pytest -m slow tests/qag/test_qag_transformers.py -s
"""

from __future__ import annotations

import pytest
import torch
from sweep import sweep_one, table


def _builders(tf) -> dict:
    def text(model_cls, config, length: int = 16):
        return lambda: (model_cls(config), (torch.randint(0, config.vocab_size, (2, length)),))

    def t5():
        config = tf.T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6,
                             num_heads=8)  # t5-small's sizes
        ids = torch.randint(0, 32128, (1, 12))
        return tf.T5ForConditionalGeneration(config), (ids, torch.ones_like(ids), torch.randint(0, 32128, (1, 8)))

    def whisper_encoder():
        config = tf.WhisperConfig(d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536,
                                  num_mel_bins=80, max_source_positions=100, decoder_layers=1, vocab_size=100,
                                  decoder_attention_heads=6, decoder_ffn_dim=64, pad_token_id=0, bos_token_id=1,
                                  eos_token_id=2, decoder_start_token_id=1)  # whisper-tiny's encoder, 2 s of audio
        return tf.WhisperModel(config).get_encoder(), (torch.randn(1, 80, 200),)

    def vit():
        config = tf.ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                              image_size=32, patch_size=8, num_labels=10)
        return tf.ViTForImageClassification(config), (torch.randn(2, 3, 32, 32),)

    return {
        "bert": text(tf.BertForSequenceClassification, tf.BertConfig(
            vocab_size=500, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
            max_position_embeddings=64)),
        "distilbert": text(tf.DistilBertForSequenceClassification, tf.DistilBertConfig(
            vocab_size=500, dim=64, n_layers=2, n_heads=4, hidden_dim=128, max_position_embeddings=64)),
        "gpt2": text(tf.GPT2LMHeadModel, tf.GPT2Config(vocab_size=500, n_embd=64, n_layer=2, n_head=4, n_positions=64,
                                                       bos_token_id=0, eos_token_id=0)),
        "vit": vit,
        "whisper_encoder": whisper_encoder,
        "t5_small": t5,
    }


@pytest.mark.slow
def test_transformers_models_convert_with_no_float_gemm():
    tf = pytest.importorskip("transformers", exc_type=ImportError)
    rows = []
    for name, build in _builders(tf).items():
        rows.append(sweep_one(name, build))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    failed = [r for r in rows if r.failure]
    print(f"\ntransformers {tf.__version__}, torch {torch.__version__}: {len(rows) - len(failed)}/{len(rows)}\n"
          f"{table(rows)}")
    assert not failed, table(failed)
