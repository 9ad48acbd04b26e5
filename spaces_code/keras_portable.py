r"""Keras：Tensorflow的黄金标准 — https://kexue.fm/archives/7055

The article's lesson (from building bert4keras' pre-training code): code written strictly to the Keras
standard moves unchanged from Keras to ``tf.keras`` and then to TPU or multi-GPU, while "clever" tricks
that reach around the API break. Keras 3 (the Keras team, 2023) takes that further: the same model
code runs on JAX, TensorFlow or PyTorch. Here it trains on the PyTorch backend and is then run, in a
fresh process, on the JAX backend.

:func:`build_classifier` is written with Keras APIs only (layers, ``keras.ops``, a custom layer that
uses nothing else), so it never names its backend. The model is a bag-of-embeddings classifier:

$$ \bar h = \frac{\sum_{t} m_t\, E[x_t]}{\max(1, \sum_t m_t)}, \quad m_t = [x_t \neq 0], \qquad
   \mathrm{logits} = \tanh(\bar h W_1 + b_1)\, W_2 + b_2 . $$

- :func:`torch_forward` computes the same formula in plain PyTorch from the weights Keras learned;
  the two agree to float32 rounding.
- :func:`logits_under_backend` loads the same weights into the same :func:`build_classifier` in a new
  Python process under another ``KERAS_BACKEND`` and returns its logits: equal to float32 rounding.
- :class:`spaces_code.keras_backend_process.BackendProcess` does the same in a process forked before
  this module is imported (it inherits PyTorch and NumPy instead of importing them again).
- ``build_classifier(clever=True)`` swaps the pooling layer for :class:`TorchMaskedMean`, the "clever"
  shortcut that calls ``torch`` directly. It computes the very same numbers on the PyTorch backend and
  cannot even be built on any other backend.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402  (the backend must be chosen before this import)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from keras import ops  # noqa: E402

from spaces_code import randomness  # noqa: E402


def require_backend(name: str, module: str) -> None:
    """Raise ``ImportError`` naming ``module`` unless Keras runs on backend ``name``.

    Keras fixes its backend at its first import (``KERAS_BACKEND``), so a module that needs one backend
    sets the variable before importing Keras and checks it after.
    """
    if keras.backend.backend() != name:
        raise ImportError(f"{module} needs KERAS_BACKEND={name}, Keras runs on {keras.backend.backend()!r}: "
                          f"set the variable before importing keras")


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


@keras.saving.register_keras_serializable(package="spaces")
class TorchMaskedMean(keras.layers.Layer):
    """The same mean written the "clever" way: ``torch`` functions called on the layer's inputs.

    On the PyTorch backend the inputs are ``torch.Tensor`` s and this works; on any other backend they
    are that backend's arrays (JAX tracers, NumPy arrays) and ``torch`` rejects them.
    """

    def call(self, embeddings, tokens):  # (batch, n, d), (batch, n) -> (batch, d)
        mask = torch.unsqueeze(torch.ne(tokens, 0), -1).to(embeddings.dtype)  # (batch, n, 1)
        return torch.sum(embeddings * mask, dim=1) / torch.clamp(torch.sum(mask, dim=1), min=1.0)


def build_classifier(config: ClassifierConfig = ClassifierConfig(), clever: bool = False,
                     seed: int | None = None) -> keras.Model:
    """The model, defined once; nothing here depends on the backend unless ``clever`` pools with torch.

    ``seed`` seeds each layer's initialiser (Keras' own default initialisers: uniform embeddings,
    Glorot-uniform kernels), so the weights depend on it alone; ``None`` leaves them to Keras' global
    seed (``keras.utils.set_random_seed``).
    """
    def init(kind, offset: int):
        return kind if seed is None else keras.initializers.get(
            {"class_name": kind, "config": {"seed": seed + offset}})

    tokens = keras.Input(shape=(config.seq_len,), dtype="int32", name="tokens")
    embeddings = keras.layers.Embedding(config.vocab_size, config.embed_dim, name="embedding",
                                        embeddings_initializer=init("random_uniform", 0))(tokens)
    pooling = TorchMaskedMean if clever else MaskedMean
    pooled = pooling(name="masked_mean")(embeddings, tokens)
    hidden = keras.layers.Dense(config.hidden, activation="tanh", name="hidden",
                                kernel_initializer=init("glorot_uniform", 1))(pooled)
    logits = keras.layers.Dense(config.classes, name="logits", kernel_initializer=init("glorot_uniform", 2))(hidden)
    return keras.Model(tokens, logits, name="bag_of_embeddings")


def compile_classifier(model: keras.Model, learning_rate: float = 1e-2) -> keras.Model:
    """Adam on the softmax cross-entropy of the logits, with accuracy."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def toy_dataset(n: int, config: ClassifierConfig = ClassifierConfig(),
                generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random padded token sequences; label 1 when most tokens come from the upper half of the vocab.

    Returns ``(tokens, labels)``: ``(n, seq_len)`` int32 with 0 as padding and ``(n,)`` int64, drawn on
    the generator's device and moved to ``device`` (default: the generator's device).
    Every sequence has at least one token; ties are broken towards label 0.
    """
    lengths = randomness.randint(1, config.seq_len + 1, (n, 1), generator=generator, device=device)
    tokens = randomness.randint(1, config.vocab_size, (n, config.seq_len), generator=generator, device=device)
    positions = torch.arange(config.seq_len, device=tokens.device)
    tokens = torch.where(positions < lengths, tokens, 0)  # (n, seq_len)
    upper = (tokens >= (config.vocab_size + 1) // 2).sum(dim=1)
    lower = ((tokens > 0) & (tokens < (config.vocab_size + 1) // 2)).sum(dim=1)
    return tokens.to(torch.int32), (upper > lower).long()


class BackendPortError(RuntimeError):
    """The model could not be built or run under another backend (the child's root error is the message)."""


def logits_under_backend(backend: str, config: ClassifierConfig, weights: list[np.ndarray],
                         tokens: np.ndarray, variants: tuple[bool, ...] = (False,),
                         timeout: float = 300.0) -> list[np.ndarray | BackendPortError]:
    """Run :func:`build_classifier` in a fresh Python process with ``KERAS_BACKEND=backend``.

    For each ``clever`` flag in ``variants`` the child builds the model from the same code, loads
    ``weights`` (``model.get_weights()`` of a model built by this module) and computes the logits
    ``(batch, classes)`` on ``tokens`` ``(batch, seq_len)``. Returns one entry per variant: the logits,
    or a :class:`BackendPortError` holding the error the model raised there. Only NumPy arrays cross
    the process boundary (a pickle on the pipes); one process serves every variant.
    """
    request = pickle.dumps((config, [np.asarray(w) for w in weights], np.asarray(tokens, dtype=np.int32),
                            tuple(variants)))
    # A two-layer model: XLA's compile time dominates a JAX run, and optimisation level 0 halves it.
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu",
               XLA_FLAGS=os.environ.get("XLA_FLAGS", "--xla_backend_optimization_level=0"))
    env.pop("KERAS_TORCH_DEVICE", None)
    child = subprocess.run([sys.executable, "-c", "from spaces_code.keras_portable import _serve; _serve()"],
                           input=request, capture_output=True, env=env, timeout=timeout, check=False)
    if child.returncode != 0:
        raise BackendPortError(f"{backend} child process failed:\n{child.stderr.decode(errors='replace')[-2000:]}")
    return [out if status == "ok" else BackendPortError(f"{backend} backend: {out}")
            for status, out in pickle.loads(child.stdout)]


def _serve() -> None:
    """Child side of :func:`logits_under_backend`: read a request on stdin, answer on stdout."""
    config, weights, tokens, variants = pickle.loads(sys.stdin.buffer.read())
    answer_to, sys.stdout = sys.stdout, sys.stderr  # whatever a library prints must not reach the pipe
    answer_to.buffer.write(pickle.dumps(backend_answers(config, weights, tokens, variants)))
    answer_to.flush()


def backend_answers(config: ClassifierConfig, weights: list[np.ndarray], tokens: np.ndarray,
                    variants: tuple[bool, ...]) -> list[tuple[str, np.ndarray | str]]:
    """On this process' backend, per ``clever`` flag: build the model, load ``weights``, compute the
    logits of ``tokens``: ``("ok", logits)``, or ``("error", message)`` with the error the model raised
    (the root error: Keras wraps it)."""
    answers = []
    for clever in variants:
        try:
            model = build_classifier(config, clever)
            model.set_weights(weights)
            # one compiled function for the whole forward pass (a plain call compiles op by op)
            answers.append(("ok", np.asarray(ops.convert_to_numpy(model.predict_on_batch(tokens)))))
        except Exception as error:  # noqa: BLE001 - handed to the parent as a BackendPortError
            while (error.__cause__ or error.__context__) is not None:  # Keras wraps the real error
                error = error.__cause__ or error.__context__
            first_line = str(error).strip().splitlines()[0].split(", but expected")[0]  # torch's long signature list
            answers.append(("error", f"{type(error).__name__}: {first_line[:300]}"))
    return answers


def torch_forward(model: keras.Model, tokens: torch.Tensor) -> torch.Tensor:
    """The classifier's formula in plain PyTorch, with the Keras model's weights (PyTorch backend).

    Runs on the weights' device and in their dtype; returns logits ``(batch, classes)``.
    """
    return _forward(_weights(model), tokens)


def torch_forward_float64(model: keras.Model, tokens: torch.Tensor) -> torch.Tensor:
    """:func:`torch_forward` on CPU in float64: the reference the Keras output is checked against."""
    weights = {name: value.double().cpu() for name, value in _weights(model).items()}
    return _forward(weights, tokens.cpu())


def _weights(model: keras.Model) -> dict[str, torch.Tensor]:
    return {
        "E": torch.as_tensor(model.get_layer("embedding").embeddings.value).detach(),  # (vocab, d)
        "W1": torch.as_tensor(model.get_layer("hidden").kernel.value).detach(),  # (d, hidden)
        "b1": torch.as_tensor(model.get_layer("hidden").bias.value).detach(),  # (hidden,)
        "W2": torch.as_tensor(model.get_layer("logits").kernel.value).detach(),  # (hidden, classes)
        "b2": torch.as_tensor(model.get_layer("logits").bias.value).detach(),  # (classes,)
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
