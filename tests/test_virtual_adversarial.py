"""Adversarial step = gradient penalty to first order; VAT's power iteration finds the worst direction
(article 23, second half). Of the four-way training comparison, what holds on every stream is asserted: noise
and VAT flatten the loss around held-out points; the gradient penalty's effect is not robust (it fades at a fit)."""
from __future__ import annotations

import pytest
import torch

from spaces_code.noise_penalty import hessian_trace
from spaces_code.virtual_adversarial import (Classifier, TrainConfig, adversarial_step, binary_noise_terms,
                                             input_gradient, kl_hessian_vector, prediction_kl, regularised_loss,
                                             train_classifier, two_moons, vat_direction)

ce = torch.nn.functional.cross_entropy


def small_model(generator, device, n_classes=3):
    model = Classifier(in_dim=5, hidden=16, n_classes=n_classes, generator=generator).double().to(device)
    x = torch.randn(64, 5, generator=generator, dtype=torch.float64).to(device)
    y = torch.randint(0, n_classes, (64,), generator=generator).to(device)
    return model, x, y


def test_adversarial_step_raises_the_loss_by_eps_times_the_gradient_norm(device, generator):
    # l(x + eps g/|g|) - l(x) - eps |g| = eps^2/2 g^T H g/|g|^2 + O(eps^3): halving eps divides it by 4.
    # Sweep of 200 seeds: median ratio over 64 points in [3.9987, 4.0009]; bound |ratio - 4| < 0.3.
    model, x, y = small_model(generator, device)
    loss = lambda z: ce(model(z), y, reduction="none")  # noqa: E731
    norm = input_gradient(loss, x).norm(dim=-1)
    rest = [(loss(adversarial_step(loss, x, eps)) - loss(x) - eps * norm).detach().abs() for eps in (2e-3, 1e-3)]
    assert abs((rest[0] / rest[1]).median().item() - 4) < 0.3
    # and to first order the step is the steepest: no random unit direction raises the loss more
    eps = 1e-4
    step = loss(adversarial_step(loss, x, eps)) - loss(x)
    for _ in range(20):
        d = torch.nn.functional.normalize(torch.randn(64, 5, generator=generator, dtype=torch.float64), dim=-1)
        assert (loss(x + eps * d.to(device)) - loss(x) <= step + 1e-12).all()


def test_power_iteration_finds_the_top_eigenvector_of_the_kl_hessian(device, generator):
    # 3 classes: H = grad_r^2 KL(p(x) || p(x + r)) at r = 0 has rank 2. After 30 power iterations the Rayleigh
    # quotient nears the top eigenvalue of the exact (autograd) Hessian; how near depends on the gap between
    # the two eigenvalues. Sweep of 200 seeds (16 points each): largest relative shortfall 0.0284; bound 0.09.
    model, x, _ = small_model(generator, device)
    d = vat_direction(model, x, n_iter=30, generator=generator)
    rayleigh = (kl_hessian_vector(model, x, d) * d).sum(-1)
    for i in range(16):
        h = torch.autograd.functional.hessian(
            lambda r: prediction_kl(model, x[i:i + 1], r[None]).sum(),
            torch.zeros(5, dtype=torch.float64, device=device))
        top = torch.linalg.eigvalsh(h)[-1]
        assert (top - rayleigh[i]).item() <= 0.09 * top.item()
        assert rayleigh[i].item() <= top.item() * (1 + 1e-9)  # a Rayleigh quotient never exceeds it
        assert torch.linalg.matrix_rank(h, rtol=1e-8).item() <= 2


def test_one_iteration_is_exact_for_two_classes(device, generator):
    # 2 classes: H = J^T F J has rank one, so a single power iteration lands on its eigenvector (analytic)
    model, x, _ = small_model(generator, device, n_classes=2)
    d = vat_direction(model, x, n_iter=1, generator=generator)
    hd = kl_hessian_vector(model, x, d)
    cos = torch.nn.functional.cosine_similarity(hd, d, dim=-1).abs()
    assert (cos > 1 - 1e-9).all()


def test_noise_term_splits_into_the_vat_eigenvalue_and_a_residual(device, generator):
    # Two classes: tr grad_x^2 l = p(1-p)|grad m|^2 + (p - y) lap m (noise's sigma^2/2 term); the first part is the
    # top eigenvalue of VAT's rank-one KL Hessian and |grad_x l|^2 = (p-y)^2 |grad m|^2 (analytic, float64).
    model, x, y = small_model(generator, device, n_classes=2)
    terms = binary_noise_terms(model, x, y)
    for i in range(4):
        trace = hessian_trace(lambda z: ce(model(z), y[i].expand(z.shape[0]), reduction="none"), x[i])
        torch.testing.assert_close(terms.fisher[i] + terms.residual[i], trace, rtol=1e-9, atol=1e-12)
    d = vat_direction(model, x, n_iter=1, generator=generator)
    torch.testing.assert_close((kl_hessian_vector(model, x, d) * d).sum(-1), terms.fisher, rtol=1e-9, atol=1e-14)
    grad = input_gradient(lambda z: ce(model(z), y, reduction="none"), x)
    torch.testing.assert_close(grad.square().sum(-1), terms.gradient_penalty, rtol=1e-9, atol=1e-14)


def test_noise_and_vat_flatten_the_loss_around_held_out_points(generator):
    # The four-way comparison of the page, reduced to what holds on every stream: 40 two-moons points, the same
    # initial tanh MLP (width 32) trained 300 Adam steps without a regulariser, with input noise (sigma = 0.3) and
    # with VAT (eps = 0.5). On 1000 held-out points, the mean gradient penalty |grad_x l|^2 of the regularised
    # net over that of the unregularised one. Sweep of 200 seeds (this test's streams): noise mean 0.017, max
    # 0.204; VAT mean 0.028, max 0.291; bound 0.9 (3.1x the worst). Not asserted (same sweep): the gradient penalty
    # itself (lambda = 1), ratio mean 0.31 but up to 2.39 -- it fades at a fit, where |grad_x l|^2 is a small
    # share of the Fisher term p(1-p)|grad_x m|^2 that noise and VAT penalise.
    x, y = two_moons(40, 0.25, generator)
    x_test, y_test = two_moons(1000, 0.25, generator)
    init_seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    penalty = {}
    for regulariser, strength in (("none", 0.0), ("noise", 0.3), ("vat", 0.5)):
        model = Classifier(hidden=32, generator=torch.Generator().manual_seed(init_seed))
        train_classifier(model, x, y, TrainConfig(regulariser, strength, steps=300), generator)
        penalty[regulariser] = binary_noise_terms(model, x_test, y_test).gradient_penalty.mean().item()
    assert penalty["noise"] < 0.9 * penalty["none"]
    assert penalty["vat"] < 0.9 * penalty["none"]


def test_draws_come_from_the_generator_alone(seed):
    results = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        gen = torch.Generator().manual_seed(seed)
        model = Classifier(generator=gen)
        x, y = two_moons(8, 0.2, gen)
        losses = [regularised_loss(model, x, y, TrainConfig(r, 0.3), gen) for r in ("noise", "vat")]
        results.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()] + [x.reshape(-1)]
                                 + [torch.stack(losses).detach()]))
    assert torch.equal(results[0], results[1])
    with pytest.raises(ValueError):
        regularised_loss(model, x, y, TrainConfig("dropout"), gen)  # type: ignore[arg-type]


def test_device_matches_cpu(device, generator):
    # same CPU-drawn model and inputs; float64: the VAT direction and the penalised loss agree to 1e-9
    model, x, y = small_model(generator, "cpu")
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    moved = Classifier(in_dim=5, hidden=16, n_classes=3).double().to(device)
    moved.load_state_dict(model.state_dict())
    d_cpu = vat_direction(model, x, 5, torch.Generator().manual_seed(seed))
    d_dev = vat_direction(moved, x.to(device), 5, torch.Generator().manual_seed(seed))
    torch.testing.assert_close(d_dev.cpu(), d_cpu, rtol=1e-9, atol=1e-9)
    config = TrainConfig("gradient_penalty", 1.0)
    torch.testing.assert_close(regularised_loss(moved, x.to(device), y.to(device), config).cpu(),
                               regularised_loss(model, x, y, config), rtol=1e-9, atol=1e-12)
