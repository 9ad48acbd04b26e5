r"""Keras：Tensorflow的黄金标准 — https://kexue.fm/archives/7055

The article's lesson (from building bert4keras' pre-training code): code written strictly to the Keras
standard moves unchanged from Keras to ``tf.keras`` and then to TPU or multi-GPU, while "clever" tricks
that reach around the API break. Keras 3 (the Keras team, 2023) takes that further: the same model
code runs on JAX, TensorFlow or PyTorch. Here it runs on the PyTorch backend.

:func:`build_classifier` is written with Keras APIs only (layers, ``keras.ops``, a custom layer that
uses nothing else), so it never names its backend. The model is a bag-of-embeddings classifier:

$$ \bar h = \frac{\sum_{t} m_t\, E[x_t]}{\max(1, \sum_t m_t)}, \quad m_t = [x_t \neq 0], \qquad
   \mathrm{logits} = \tanh(\bar h W_1 + b_1)\, W_2 + b_2 . $$

:func:`torch_forward` computes the same formula in plain PyTorch from the weights Keras learned;
the two agree to float32 rounding.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402  (the backend must be chosen before this import)
import torch  # noqa: E402
from keras import ops  # noqa: E402

if keras.backend.backend() != "torch":
    raise ImportError(f"spaces_code.keras_portable needs KERAS_BACKEND=torch, Keras runs on "
                      f"{keras.backend.backend()!r}: set the variable before importing keras")


@dataclass(frozen=True)
class ClassifierConfig:
    vocab_size: int = 32  # token 0 is padding
    seq_len: int = 12  # tokens per example (padded)
    embed_dim: int = 16
    hidden: int = 32
    classes: int = 2


@keras.saving.register_keras_serializable(package="spaces")
class MaskedMean(keras.layers.Layer):
    """Mean of the embeddings over the non-padding positions, written with ``keras.ops`` only."""

    def call(self, embeddings, tokens):  # (batch, n, d), (batch, n) -> (batch, d)
        # $m_t = [x_t \neq 0]$
        mask = ops.expand_dims(ops.cast(ops.not_equal(tokens, 0), embeddings.dtype), -1)  # (batch, n, 1)
        # $\bar h = \sum_t m_t E[x_t] / \max(1, \sum_t m_t)$
        return ops.sum(embeddings * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)


def build_classifier(config: ClassifierConfig = ClassifierConfig()) -> keras.Model:
    """The model, defined once; nothing here depends on the backend."""
    tokens = keras.Input(shape=(config.seq_len,), dtype="int32", name="tokens")
    embeddings = keras.layers.Embedding(config.vocab_size, config.embed_dim, name="embedding")(tokens)
    pooled = MaskedMean(name="masked_mean")(embeddings, tokens)
    hidden = keras.layers.Dense(config.hidden, activation="tanh", name="hidden")(pooled)
    logits = keras.layers.Dense(config.classes, name="logits")(hidden)
    return keras.Model(tokens, logits, name="bag_of_embeddings")


def compile_classifier(model: keras.Model, learning_rate: float = 1e-2) -> keras.Model:
    """Adam on the softmax cross-entropy of the logits, with accuracy."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def toy_dataset(n: int, config: ClassifierConfig = ClassifierConfig(),
                generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Random padded token sequences; label 1 when most tokens come from the upper half of the vocab.

    Returns ``(tokens, labels)``: ``(n, seq_len)`` int32 with 0 as padding and ``(n,)`` int64.
    Every sequence has at least one token; ties are broken towards label 0.
    """
    lengths = torch.randint(1, config.seq_len + 1, (n, 1), generator=generator, device=device)
    tokens = torch.randint(1, config.vocab_size, (n, config.seq_len), generator=generator, device=device)
    tokens = torch.where(torch.arange(config.seq_len, device=device) < lengths, tokens, 0)  # (n, seq_len)
    upper = (tokens >= (config.vocab_size + 1) // 2).sum(dim=1)
    lower = ((tokens > 0) & (tokens < (config.vocab_size + 1) // 2)).sum(dim=1)
    return tokens.to(torch.int32), (upper > lower).long()


def torch_forward(model: keras.Model, tokens: torch.Tensor) -> torch.Tensor:
    """The classifier's formula in plain PyTorch, with the Keras model's weights.

    Runs on the weights' device and in their dtype; returns logits ``(batch, classes)``.
    """
    return _forward(_weights(model), tokens)


def torch_forward_float64(model: keras.Model, tokens: torch.Tensor) -> torch.Tensor:
    """:func:`torch_forward` on CPU in float64: the reference the Keras output is checked against."""
    weights = {name: value.double().cpu() for name, value in _weights(model).items()}
    return _forward(weights, tokens.cpu())


def _weights(model: keras.Model) -> dict[str, torch.Tensor]:
    return {
        "E": model.get_layer("embedding").embeddings.value.detach(),  # (vocab, d)
        "W1": model.get_layer("hidden").kernel.value.detach(),  # (d, hidden)
        "b1": model.get_layer("hidden").bias.value.detach(),  # (hidden,)
        "W2": model.get_layer("logits").kernel.value.detach(),  # (hidden, classes)
        "b2": model.get_layer("logits").bias.value.detach(),  # (classes,)
    }


def _forward(w: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    tokens = tokens.long()
    embedded = w["E"][tokens]  # (batch, n, d)
    # $m_t = [x_t \neq 0]$
    mask = (tokens != 0).to(embedded.dtype).unsqueeze(-1)  # (batch, n, 1)
    # $\bar h = \sum_t m_t E[x_t] / \max(1, \sum_t m_t)$
    pooled = (embedded * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (batch, d)
    # $\mathrm{logits} = \tanh(\bar h W_1 + b_1) W_2 + b_2$
    return torch.tanh(pooled @ w["W1"] + w["b1"]) @ w["W2"] + w["b2"]  # (batch, classes)
