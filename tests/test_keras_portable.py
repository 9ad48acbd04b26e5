"""Keras gold standard (#2): one model definition, trained by Keras 3 on PyTorch, equals a plain-torch
forward and gives the same logits when the same code runs on the JAX backend; the "clever" torch layer
does not port."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spaces_code.keras_portable import (BackendPortError, ClassifierConfig, build_classifier,
                                        compile_classifier, logits_under_backend, toy_dataset,
                                        torch_forward, torch_forward_float64)

import keras  # noqa: E402  (after spaces_code.keras_portable, which selects the torch backend)

# Keras converts tensors with np.array(x, copy=False), which torch tensors answer with this warning
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SMALL = ClassifierConfig(vocab_size=10, seq_len=5, embed_dim=4, hidden=6, classes=3)
# float32 forward: a 12-term mean, a 16-term and a 32-term dot product and a tanh. Sweep of 200 seeds
# x 2 configs (trained models, 256 inputs, |logits| <= 3.9): max |Keras - plain torch| 0 (same ops),
# max |float32 - float64| 8.3e-7; the 200 trained default models run on the JAX backend: max
# |JAX - torch| 9.5e-7, max |JAX - float64| 6.2e-7. Tolerance 1e-5: >= 10x margin.
TOL = 1e-5


def test_backend_is_torch():
    assert keras.backend.backend() == "torch"


@pytest.mark.parametrize("config", [ClassifierConfig(), SMALL])
def test_fit_then_outputs_equal_plain_torch(device, generator, config):
    with keras.device(device.type):
        model = compile_classifier(build_classifier(config))
        tokens, labels = toy_dataset(256, config, generator, device)
        labels = labels % config.classes
        before = model.evaluate(tokens.cpu().numpy(), labels.cpu().numpy(), verbose=0)[0]
        model.fit(tokens.cpu().numpy(), labels.cpu().numpy(), batch_size=32, epochs=2, verbose=0)
        after = model.evaluate(tokens.cpu().numpy(), labels.cpu().numpy(), verbose=0)[0]
        keras_logits = model(tokens)
        plain = torch_forward(model, tokens)
    # 16 Adam steps did train the weights compared below. Sweep of 200 seeds x 2 configs:
    # after / before <= 0.74, so the loss drops by >= 26% on every stream.
    assert after < before
    assert isinstance(keras_logits, torch.Tensor) and keras_logits.device.type == device.type
    torch.testing.assert_close(keras_logits, plain, atol=TOL, rtol=TOL)
    torch.testing.assert_close(keras_logits.double().cpu(), torch_forward_float64(model, tokens),
                               atol=TOL, rtol=TOL)


def test_device_matches_cpu(device, generator):
    """The same weights and inputs give the same logits on ``device`` as on CPU (and float64)."""
    tokens, _ = toy_dataset(64, ClassifierConfig(), generator)  # drawn once, on CPU
    with keras.device("cpu"):
        cpu_model = build_classifier()
        cpu_logits = cpu_model(tokens).detach()
    with keras.device(device.type):
        model = build_classifier()
        model.set_weights(cpu_model.get_weights())
        logits = model(tokens.to(device)).detach()
    assert logits.device.type == device.type
    torch.testing.assert_close(logits.cpu(), cpu_logits, atol=TOL, rtol=TOL)
    torch.testing.assert_close(logits.double().cpu(), torch_forward_float64(cpu_model, tokens), atol=TOL, rtol=TOL)


def test_same_code_runs_on_the_jax_backend_the_clever_layer_does_not(generator):
    """The article's claim, run: the standard model ports unchanged, the torch shortcut breaks."""
    config = ClassifierConfig()
    model = compile_classifier(build_classifier(config))
    tokens, labels = toy_dataset(128, config, generator)
    model.fit(tokens.numpy(), labels.numpy(), batch_size=32, epochs=1, verbose=0)
    torch_logits = model(tokens).detach().numpy()
    clever = build_classifier(config, clever=True)
    clever.set_weights(model.get_weights())
    # on the PyTorch backend the shortcut computes the very same numbers (same ops, same order)
    np.testing.assert_array_equal(clever(tokens).detach().numpy(), torch_logits)

    standard, shortcut = logits_under_backend("jax", config, model.get_weights(), tokens.numpy(),
                                              variants=(False, True))
    assert isinstance(standard, np.ndarray) and standard.shape == (128, config.classes)
    np.testing.assert_allclose(standard, torch_logits, atol=TOL, rtol=TOL)
    np.testing.assert_allclose(standard, torch_forward_float64(model, tokens).numpy(), atol=TOL, rtol=TOL)
    assert isinstance(shortcut, BackendPortError)
    assert "TypeError" in str(shortcut) and "Tracer" in str(shortcut)  # torch was handed a JAX array


def test_padding_is_ignored(device):
    """Extra padding does not change the output; an all-padding row gives tanh(b1) W2 + b2."""
    with keras.device(device.type):
        model = build_classifier(SMALL)
        tokens = torch.tensor([[3, 4, 0, 0, 0], [3, 4, 0, 0, 0], [3, 0, 4, 0, 0], [0, 0, 0, 0, 0]],
                              dtype=torch.int32, device=device)
        logits = model(tokens)
    torch.testing.assert_close(logits[0], logits[2], atol=1e-6, rtol=1e-6)  # order-free mean
    b1 = model.get_layer("hidden").bias.value
    w2, b2 = model.get_layer("logits").kernel.value, model.get_layer("logits").bias.value
    torch.testing.assert_close(logits[3], torch.tanh(b1) @ w2 + b2, atol=1e-6, rtol=1e-6)


def test_saved_model_reloads_identically(tmp_path, generator):
    """The .keras file holds the Keras description, not torch objects: it reloads and gives equal logits."""
    model = build_classifier(SMALL)
    tokens, _ = toy_dataset(8, SMALL, generator)
    path = tmp_path / "classifier.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    torch.testing.assert_close(reloaded(tokens), model(tokens), atol=0.0, rtol=0.0)


def test_toy_dataset(generator, seed):
    tokens, labels = toy_dataset(500, SMALL, generator)
    assert tokens.dtype == torch.int32 and tokens.shape == (500, SMALL.seq_len)
    assert ((tokens > 0).sum(dim=1) >= 1).all() and (tokens < SMALL.vocab_size).all()
    # padding only at the end of each row
    assert ((tokens[:, 1:] > 0) <= (tokens[:, :-1] > 0)).all()
    upper = (tokens >= 5).sum(dim=1)
    lower = ((tokens > 0) & (tokens < 5)).sum(dim=1)
    assert torch.equal(labels, (upper > lower).long())
    # the data depend on the generator alone, not on the global RNG
    torch.manual_seed(seed + 1)
    again, _ = toy_dataset(500, SMALL, torch.Generator().manual_seed(seed))
    torch.manual_seed(seed + 2)
    assert torch.equal(again, toy_dataset(500, SMALL, torch.Generator().manual_seed(seed))[0])


def test_seeded_weights_depend_on_the_seed_alone(seed):
    keras.utils.set_random_seed(seed + 1)
    first = build_classifier(SMALL, seed=seed).get_weights()
    keras.utils.set_random_seed(seed + 2)
    second = build_classifier(SMALL, seed=seed).get_weights()
    other = build_classifier(SMALL, seed=seed + 3).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(first[0], other[0]) and not np.array_equal(first[1], other[1])
