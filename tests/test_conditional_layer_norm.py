"""Conditional Layer Normalization (https://kexue.fm/archives/7124)."""
import pytest
import torch

from spaces_code.conditional_layer_norm import ConditionalLayerNorm, ConditionalLM


@pytest.mark.parametrize("shape", [(3, 8), (3, 5, 8), (3, 2, 4, 8)])
@pytest.mark.parametrize("hidden_dim", [None, 4])
def test_equals_layer_norm_exactly_at_initialisation(device, generator, shape, hidden_dim):
    cln = ConditionalLayerNorm(8, cond_dim=6, hidden_dim=hidden_dim, generator=generator).to(device)
    ln = torch.nn.LayerNorm(8).to(device)
    x = (torch.randn(*shape, generator=generator) * 10 + 3).to(device)
    cond = (torch.randn(3, 6, generator=generator) * 100).to(device)  # any condition, even huge
    assert torch.equal(cln(x, cond), ln(x))


def naive_cln(x, cond, cln):
    """float64 reference: y = (gamma + W_g c) * (x - mu) / sqrt(var + eps) + (beta + W_b c)."""
    x, cond = x.double().cpu(), cond.double().cpu()
    p = {k: v.double().cpu() for k, v in cln.state_dict().items()}
    c = cond if cln.hidden is None else cond @ p["hidden.weight"].T
    gamma = p["gamma"] + c @ p["gamma_dense.weight"].T
    beta = p["beta"] + c @ p["beta_dense.weight"].T
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return gamma[:, None, :] * (x - mu) / torch.sqrt(var + cln.eps) + beta[:, None, :]


@pytest.mark.parametrize("hidden_dim", [None, 3])
def test_perturbed_weights_match_the_formula(device, generator, hidden_dim):
    cln = ConditionalLayerNorm(8, cond_dim=5, hidden_dim=hidden_dim, generator=generator)
    with torch.no_grad():
        for p in cln.parameters():
            p.add_(torch.randn(p.shape, generator=generator))
    cln = cln.to(device)
    x = torch.randn(4, 7, 8, generator=generator).to(device)
    cond = torch.randn(4, 5, generator=generator).to(device)
    out = cln(x, cond)
    assert torch.allclose(out.double().cpu(), naive_cln(x, cond, cln), atol=1e-5)
    # now the condition matters: swapping conditions changes the output (gamma(c), beta(c) differ by
    # O(1) between two Gaussian conditions; the largest of 4 x 7 x 8 changes is far above 1e-3)
    assert not torch.allclose(out, cln(x, cond.flip(0)), atol=1e-3)


def test_one_step_from_zero_init_makes_it_conditional(device, generator):
    cln = ConditionalLayerNorm(8, cond_dim=2, generator=generator).to(device)
    x = torch.randn(2, 5, 8, generator=generator).to(device)
    cond = torch.eye(2, device=device)
    target = torch.randn(2, 5, 8, generator=generator).to(device)
    loss = ((cln(x, cond) - target) ** 2).mean()
    loss.backward()
    # zero-initialised layers still receive gradient: dL/dW_gamma = (dL/dgamma(c)) c^T
    assert cln.gamma_dense.weight.grad.abs().max() > 1e-4
    with torch.no_grad():  # one plain SGD step
        for p in cln.parameters():
            p -= 0.5 * p.grad
    same_x = x[:1].expand(2, -1, -1)
    y = cln(same_x, cond)
    assert (y[0] - y[1]).abs().max() > 1e-3
    assert loss.item() > ((cln(x, cond) - target) ** 2).mean().item()


def test_weights_depend_on_the_generator_alone(seed):
    runs = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        model = ConditionalLM(vocab_size=10, cond_dim=4, n_positions=8, generator=torch.Generator().manual_seed(seed))
        cln = ConditionalLayerNorm(6, 3, hidden_dim=2, generator=torch.Generator().manual_seed(seed))
        runs.append([*model.state_dict().values(), *cln.state_dict().values()])
    for first, second in zip(*runs):
        assert torch.equal(first, second)


def test_conditional_lm_ignores_condition_at_initialisation(device, generator):
    model = ConditionalLM(vocab_size=10, cond_dim=4, n_positions=8, n_layer=2, generator=generator).to(device)
    ids = torch.randint(0, 10, (1, 8), generator=generator).to(device).expand(4, -1)
    logits = model(ids, torch.randn(4, 4, generator=generator).to(device))
    assert torch.equal(logits, logits[:1].expand(4, -1, -1))


def test_device_matches_cpu(device, generator):
    cln = ConditionalLayerNorm(16, cond_dim=3, hidden_dim=5, generator=generator)
    with torch.no_grad():
        for p in cln.parameters():
            p.normal_(generator=generator)
    x = torch.randn(2, 4, 16, generator=generator).to(device)
    cond = torch.randn(2, 3, generator=generator).to(device)
    out = cln.to(device)(x, cond)
    assert torch.allclose(out.cpu(), naive_cln(x, cond, cln).float(), atol=1e-5)


def test_wrapping_a_pretrained_layer_norm_keeps_its_output(device, generator):
    ln = torch.nn.LayerNorm(12, eps=1e-6).to(device)
    with torch.no_grad():  # a "pretrained" gain and bias
        ln.weight.copy_(torch.randn(12, generator=generator).to(device))
        ln.bias.copy_(torch.randn(12, generator=generator).to(device))
    cln = ConditionalLayerNorm.from_layer_norm(ln, cond_dim=3, hidden_dim=2, generator=generator)
    x = torch.randn(5, 7, 12, generator=generator).to(device)
    cond = torch.randn(5, 3, generator=generator).to(device)
    assert cln.eps == ln.eps
    # same numbers up to float32 rounding (the fused LayerNorm kernel may use a fused multiply-add)
    assert torch.allclose(cln(x, cond), ln(x), rtol=0, atol=1e-5)
    with pytest.raises(ValueError):
        ConditionalLayerNorm.from_layer_norm(torch.nn.LayerNorm(4, elementwise_affine=False), 3)
