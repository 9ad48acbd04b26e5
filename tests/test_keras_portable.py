"""Keras gold standard (#2): one model definition, Keras 3 on PyTorch, equals a plain-torch forward."""
from __future__ import annotations

import pytest
import torch

from spaces_code.keras_portable import (ClassifierConfig, build_classifier, compile_classifier,
                                        toy_dataset, torch_forward, torch_forward_float64)

import keras  # noqa: E402  (after spaces_code.keras_portable, which selects the torch backend)

# Keras converts tensors with np.array(x, copy=False), which torch tensors answer with this warning
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SMALL = ClassifierConfig(vocab_size=10, seq_len=5, embed_dim=4, hidden=6, classes=3)


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
    assert after < before  # a few steps of fit did train the weights that are compared below
    assert isinstance(keras_logits, torch.Tensor) and keras_logits.device.type == device.type
    torch.testing.assert_close(keras_logits, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(keras_logits.double().cpu(), torch_forward_float64(model, tokens),
                               atol=1e-5, rtol=1e-5)


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


def test_toy_dataset(generator):
    tokens, labels = toy_dataset(500, SMALL, generator)
    assert tokens.dtype == torch.int32 and tokens.shape == (500, SMALL.seq_len)
    assert ((tokens > 0).sum(dim=1) >= 1).all() and (tokens < SMALL.vocab_size).all()
    # padding only at the end of each row
    assert ((tokens[:, 1:] > 0) <= (tokens[:, :-1] > 0)).all()
    upper = (tokens >= 5).sum(dim=1)
    lower = ((tokens > 0) & (tokens < 5)).sum(dim=1)
    assert torch.equal(labels, (upper > lower).long())
