"""SGD ≈ kernel machine: the trained model equals f_0 + path-kernel expansion up to an O(lr) error."""
from __future__ import annotations

import torch

from spaces_code.path_kernel import MLPConfig, init_params, mlp, per_example_gradients, train_with_path_kernel

F64 = torch.float64


def toy_problem(generator, device, hidden=16):
    # drawn with the CPU generator, then moved to ``device``
    params = init_params(MLPConfig(in_dim=2, hidden=hidden), generator, device)
    x_train = torch.randn(10, 2, generator=generator, dtype=F64).to(device)
    y_train = torch.sin(x_train.sum(-1))
    x_query = torch.randn(25, 2, generator=generator, dtype=F64).to(device)
    return params, x_train, y_train, x_query


def test_per_example_gradients_match_a_loop(device, generator):
    params, x_train, _, _ = toy_problem(generator, device)
    got = per_example_gradients(params, x_train)
    leaves = [p.clone().requires_grad_(True) for p in params]
    for i in range(x_train.shape[0]):
        grads = torch.autograd.grad(mlp(leaves, x_train[i:i + 1]).sum(), leaves)
        torch.testing.assert_close(got[i], torch.cat([g.reshape(-1) for g in grads]), rtol=1e-12, atol=1e-14)


def test_trained_model_is_a_kernel_machine(device, generator):
    # |f_T - kernel form| <= 2% of |f_T - f_0| (max over 25 query points), lr 0.02, 100 steps.
    # Sweep of 200 seeds: max|f_T - f_0| mean 1.24, min 0.164 (bound 0.05); relative gap mean 0.0013, max 0.0072
    # (bound 0.02; the old 1% bound had a margin under 2). The loss ratio L_T/L_0 (mean 0.10, max 0.74) is not
    # asserted: it has no 3x margin to 1.
    params, x_train, y_train, x_query = toy_problem(generator, device)
    run = train_with_path_kernel(params, x_train, y_train, x_query, lr=0.02, steps=100)
    change = (run.trained - run.initial).abs().max()
    assert change > 0.05  # the model did move
    assert (run.trained - run.kernel_machine).abs().max() <= 0.02 * change


def test_kernel_form_error_is_first_order_in_lr(device, generator):
    # Same total time lr * steps = 1: each step's first-order error is O(lr^2), so the accumulated error is
    # c lr + O(lr^2) and halving lr halves it. Measured as the L2 norm over the 25 query points (the max
    # norm can switch points between runs), at lr = 0.02, 0.01, 0.005 where the O(lr^2) part is small
    # (the old check at lr = 0.04 failed 1 seed in 60). Sweep of 200 seeds: ratios in [1.868, 2.404] (mean 2.037)
    # and [1.933, 2.173] (mean 2.018); bounds 1.5 < ratio < 3.2, 3x the deviations on each side: a zeroth-order
    # (1) or second-order (4) error would fail it.
    params, x_train, y_train, x_query = toy_problem(generator, device)
    errors = []
    for lr, steps in ((0.02, 50), (0.01, 100), (0.005, 200)):
        run = train_with_path_kernel(params, x_train, y_train, x_query, lr=lr, steps=steps)
        errors.append((run.trained - run.kernel_machine).norm().item())
    for coarse, fine in zip(errors, errors[1:]):
        assert 1.5 < coarse / fine < 3.2


def test_path_kernel_on_training_points(device, generator):
    params, x_train, y_train, _ = toy_problem(generator, device)
    run = train_with_path_kernel(params, x_train, y_train, x_train, lr=0.02, steps=60)
    # a sum of Gram matrices: symmetric positive semi-definite
    torch.testing.assert_close(run.path_kernel, run.path_kernel.T)
    assert torch.linalg.eigvalsh(run.path_kernel).min().item() > -1e-10
    # at the training inputs the kernel form reproduces the trained predictions too
    # sweep of 200 seeds (lr 0.02, 60 steps): max gap mean 0.0016, worst 0.0136; bound 0.05
    torch.testing.assert_close(run.kernel_machine, mlp(run.params, x_train), rtol=0, atol=0.05)


def test_init_draws_come_from_the_generator_alone(seed):
    draws = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        draws.append(torch.cat([p.reshape(-1) for p in init_params(MLPConfig(), torch.Generator().manual_seed(seed))]))
    assert torch.equal(draws[0], draws[1])


def test_device_matches_cpu_float64(device, generator):
    # the same CPU-drawn problem on both devices; float64 through 30 steps: agreement to 1e-9
    params, x_train, y_train, x_query = toy_problem(generator, "cpu")
    ref = train_with_path_kernel(params, x_train, y_train, x_query, lr=0.02, steps=30)
    got = train_with_path_kernel([p.to(device) for p in params], x_train.to(device), y_train.to(device),
                                 x_query.to(device), lr=0.02, steps=30)
    torch.testing.assert_close(got.kernel_machine.cpu(), ref.kernel_machine, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(got.trained.cpu(), ref.trained, rtol=1e-9, atol=1e-10)
