"""Layer reuse of #7: a Dense layer called three times owns one kernel and one bias; equals torch."""
from __future__ import annotations

import pytest
import torch

from spaces_code.keras_reuse import ReusedLinear, distinct_weights, reused_dense_model

import keras  # noqa: E402  (after spaces_code.keras_reuse, which selects the torch backend)

# Keras converts tensors with np.array(x, copy=False), which torch tensors answer with this warning
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_backend_is_torch():
    assert keras.backend.backend() == "torch"


@pytest.mark.parametrize("dim,times", [(784, 3), (5, 1), (3, 7)])
def test_reused_layer_owns_one_weight_set(device, dim, times):
    with keras.device(device.type):
        model, layer = reused_dense_model(dim, times)
    assert len(model.weights) == 2 == distinct_weights(model)
    assert model.weights[0] is layer.kernel and model.weights[1] is layer.bias
    assert model.count_params() == dim * dim + dim
    assert layer.kernel.value.device.type == device.type


@pytest.mark.parametrize("dim,times,batch", [(784, 3, 4), (6, 1, 1), (9, 5, 3)])
def test_keras_equals_torch_twin(device, generator, dim, times, batch):
    with keras.device(device.type):
        model, layer = reused_dense_model(dim, times)
        twin = ReusedLinear.from_keras(layer, times)
        x = torch.randn(batch, dim, generator=generator, device=device)
        keras_out = model(x)
    assert len(list(twin.parameters())) == 2
    with torch.no_grad():
        torch_out = twin(x)
        # float64 CPU reference: relu(x W + b) three times with the Keras kernel W itself
        w = layer.kernel.value.detach().double().cpu()
        b = layer.bias.value.detach().double().cpu()
        ref = x.double().cpu()
        for _ in range(times):
            ref = torch.relu(ref @ w + b)
    torch.testing.assert_close(keras_out, torch_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch_out.double().cpu(), ref, atol=1e-5, rtol=1e-5)


def test_shared_weights_train_together(device, generator):
    """One gradient step moves the single shared kernel; the three calls see the same update."""
    with keras.device(device.type):
        model, layer = reused_dense_model(4, 3)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x = torch.rand(8, 4, generator=generator, device=device) + 0.5
        before = layer.kernel.value.detach().clone()
        model.train_on_batch(x.cpu().numpy(), torch.zeros_like(x).cpu().numpy())
        after = layer.kernel.value.detach()
    assert len(model.trainable_weights) == 2
    assert not torch.equal(before, after)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        reused_dense_model(4, 0)
    with pytest.raises(ValueError):
        ReusedLinear(4, 0)
    _, tanh_layer = reused_dense_model(4, 1, activation="tanh")
    with pytest.raises(ValueError):
        ReusedLinear.from_keras(tanh_layer)
