"""SGD ≈ kernel machine: the trained model equals f_0 + path-kernel expansion up to an O(lr) error."""
from __future__ import annotations

import pytest
import torch

from spaces_code.path_kernel import MLPConfig, init_params, mlp, per_example_gradients, train_with_path_kernel

F64 = torch.float64


def toy_problem(generator, device, hidden=16):
    params = init_params(MLPConfig(in_dim=2, hidden=hidden), generator, device)
    x_train = torch.randn(10, 2, generator=generator, device=device, dtype=F64)
    y_train = torch.sin(x_train.sum(-1))
    x_query = torch.randn(25, 2, generator=generator, device=device, dtype=F64)
    return params, x_train, y_train, x_query


def test_per_example_gradients_match_a_loop(device, generator):
    params, x_train, _, _ = toy_problem(generator, device)
    got = per_example_gradients(params, x_train)
    leaves = [p.clone().requires_grad_(True) for p in params]
    for i in range(x_train.shape[0]):
        grads = torch.autograd.grad(mlp(leaves, x_train[i:i + 1]).sum(), leaves)
        torch.testing.assert_close(got[i], torch.cat([g.reshape(-1) for g in grads]), rtol=1e-12, atol=1e-14)


def test_trained_model_is_a_kernel_machine(device, generator):
    # tolerance: |f_T - kernel form| <= 1% of |f_T - f_0| (max over 25 query points), lr 0.02, 100 steps
    params, x_train, y_train, x_query = toy_problem(generator, device)
    run = train_with_path_kernel(params, x_train, y_train, x_query, lr=0.02, steps=100)
    assert run.train_loss[-1] < 0.8 * run.train_loss[0]
    change = (run.trained - run.initial).abs().max()
    assert change > 0.05  # the model did move
    assert (run.trained - run.kernel_machine).abs().max() <= 0.01 * change


def test_kernel_form_error_is_first_order_in_lr(device, generator):
    # same total time lr * steps = 2: halving lr halves the accumulated O(lr^2)-per-step error
    params, x_train, y_train, x_query = toy_problem(generator, device)
    errors = []
    for lr, steps in ((0.04, 50), (0.02, 100), (0.01, 200)):
        run = train_with_path_kernel(params, x_train, y_train, x_query, lr=lr, steps=steps)
        errors.append((run.trained - run.kernel_machine).abs().max().item())
    for coarse, fine in zip(errors, errors[1:]):
        assert 1.5 < coarse / fine < 2.7  # ~2 (seeds 0-4: 1.90 to 2.46)


def test_path_kernel_on_training_points(device, generator):
    params, x_train, y_train, _ = toy_problem(generator, device)
    run = train_with_path_kernel(params, x_train, y_train, x_train, lr=0.02, steps=60)
    # a sum of Gram matrices: symmetric positive semi-definite
    torch.testing.assert_close(run.path_kernel, run.path_kernel.T)
    assert torch.linalg.eigvalsh(run.path_kernel).min().item() > -1e-10
    # at the training inputs the kernel form reproduces the trained predictions too
    torch.testing.assert_close(run.kernel_machine, mlp(run.params, x_train), rtol=0, atol=0.01)


def test_device_matches_cpu_float64(device):
    if device.type == "cpu":
        pytest.skip("compares a non-CPU device with the CPU")
    params, x_train, y_train, x_query = toy_problem(torch.Generator().manual_seed(0), "cpu")
    ref = train_with_path_kernel(params, x_train, y_train, x_query, lr=0.02, steps=30)
    got = train_with_path_kernel([p.to(device) for p in params], x_train.to(device), y_train.to(device),
                                 x_query.to(device), lr=0.02, steps=30)
    torch.testing.assert_close(got.kernel_machine.cpu(), ref.kernel_machine, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(got.trained.cpu(), ref.trained, rtol=1e-9, atol=1e-10)
