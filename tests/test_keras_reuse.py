"""Layer reuse of #7: a Dense layer called three times owns one kernel and one bias; equals torch."""
from __future__ import annotations

import pytest
import torch

from spaces_code.keras_reuse import (ReusedLinear, distinct_weights, per_call_kernel_gradients,
                                     reused_dense_model)

import keras  # noqa: E402  (after spaces_code.keras_reuse, which selects the torch backend)

# Keras converts tensors with np.array(x, copy=False), which torch tensors answer with this warning
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


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
        x = torch.randn(batch, dim, generator=generator).to(device)  # drawn on CPU
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


def test_shared_kernel_gradient_is_the_sum_of_the_per_call_gradients(device, generator, seed):
    """Keras' gradient of the one kernel, and the SGD step it takes, equal the sum over the three calls.

    A model with one copy per call would get a single term, not the sum: the test checks the sum differs
    from every single term. tanh keeps every call's gradient non-zero (relu units can all die).
    """
    dim, times, lr = 4, 3, 0.1
    with keras.device(device.type):
        model, layer = reused_dense_model(dim, times, activation="tanh", seed=seed)
        model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
        x = (torch.rand(8, dim, generator=generator) + 0.5).to(device)  # drawn on CPU
        target = torch.zeros_like(x)
        per_call = per_call_kernel_gradients(layer, x, target, times)  # (3, dim, dim)
        loss = (model(x) - target).pow(2).mean()
        shared = torch.autograd.grad(loss, layer.kernel.value)[0]  # the one kernel's gradient
        before = layer.kernel.value.detach().clone()
        model.train_on_batch(x.cpu().numpy(), target.cpu().numpy())
        step = layer.kernel.value.detach() - before
    assert len(model.trainable_weights) == 2 == distinct_weights(model)
    # float32 rounding only: sweep of 200 seeds, max |shared - sum| 6.0e-8, max |step + lr sum| 3.2e-8
    torch.testing.assert_close(shared, per_call.sum(0), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(step, -lr * per_call.sum(0), atol=1e-6, rtol=1e-5)
    # every single call's term is far from the sum (a one-copy-per-call model would fail here):
    # sweep of 200 seeds: max |sum - term k| >= 0.020 (>= 31% of max |sum|) for every k; bound 1e-5
    for k in range(times):
        assert float((per_call.sum(0) - per_call[k]).abs().max()) > 1e-5


def test_reused_linear_weights_come_from_the_generator(seed):
    torch.manual_seed(seed + 1)
    first = ReusedLinear(6, 3, torch.Generator().manual_seed(seed))
    torch.manual_seed(seed + 2)
    second = ReusedLinear(6, 3, torch.Generator().manual_seed(seed))
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)
    bound = 1 / 6 ** 0.5  # PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert float(first.linear.weight.detach().abs().max()) <= bound
    assert float(first.linear.bias.detach().abs().max()) <= bound
    state = torch.get_rng_state()
    ReusedLinear(6, 3, torch.Generator().manual_seed(seed))
    assert torch.equal(state, torch.get_rng_state())  # the global RNG was not touched


def test_torch_twin_matches_cpu_on_device(device, generator):
    """The same module and inputs on ``device`` give the CPU result (float32 within 1e-5)."""
    twin = ReusedLinear(16, 3, generator)
    x = torch.randn(5, 16, generator=generator)
    with torch.no_grad():
        on_device = twin.to(device)(x.to(device)).cpu()
        on_cpu = twin.cpu()(x)
        reference = twin.double()(x.double())
    torch.testing.assert_close(on_device, on_cpu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(on_cpu.double(), reference, atol=1e-5, rtol=1e-5)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        reused_dense_model(4, 0)
    with pytest.raises(ValueError):
        ReusedLinear(4, 0)
    _, tanh_layer = reused_dense_model(4, 1, activation="tanh")
    with pytest.raises(ValueError):
        ReusedLinear.from_keras(tanh_layer)
