"""CPM-LM / GPT-2 parameter count and the tiny model (https://kexue.fm/archives/7912)."""
import pytest
import torch

from spaces_code.cpm_lm import GPT2Config, GPT2LM, count_parameters
from spaces_code.decoding import greedy_decode, sample_decode


def test_cpm_lm_is_about_2_6_billion():
    config = GPT2Config()
    v, p, d, layers = 30000, 1024, 2560, 32
    assert (config.vocab_size, config.n_positions, config.n_embd, config.n_layer) == (v, p, d, layers)
    # $N = (V + P)d + L(12d^2 + 13d) + 2d$
    assert count_parameters(config) == (v + p) * d + layers * (12 * d * d + 13 * d) + 2 * d == 2_597_073_920
    # the CPM paper's sizes: Small 109M, Medium 334M
    assert round(count_parameters(GPT2Config(n_layer=12, n_embd=768, n_head=12)) / 1e6) == 109
    assert round(count_parameters(GPT2Config(n_layer=24, n_embd=1024, n_head=16)) / 1e6) == 334


@pytest.mark.parametrize("config", [
    GPT2Config(vocab_size=37, n_positions=16, n_layer=2, n_embd=24, n_head=3),
    GPT2Config(vocab_size=11, n_positions=5, n_layer=3, n_embd=8, n_head=2, mlp_ratio=2,
               tie_embeddings=False),
    GPT2Config(vocab_size=7, n_positions=3, n_layer=0, n_embd=4, n_head=1),
])
def test_analytic_count_equals_instantiated_model(config):
    model = GPT2LM(config)
    assert count_parameters(config) == sum(p.numel() for p in model.parameters())


def tiny_model(device, seed, dtype=torch.float64):
    config = GPT2Config(vocab_size=13, n_positions=10, n_layer=2, n_embd=16, n_head=4)
    return GPT2LM(config, generator=torch.Generator().manual_seed(seed)).to(device=device, dtype=dtype).eval()


def test_logits_do_not_see_the_future(device, generator, seed):
    model = tiny_model(device, seed)
    ids = torch.randint(0, 13, (3, 9), generator=generator).to(device)
    changed = ids.clone()
    changed[:, 5:] = (ids[:, 5:] + torch.randint(1, 13, (3, 4), generator=generator).to(device)) % 13  # all differ
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-12)
    # changed tokens change their own logits: with N(0, 0.02) weights the logits move by ~1e-3 (float64)
    assert not torch.allclose(a[:, 5:], b[:, 5:], atol=1e-6)


def test_device_matches_cpu_float64(device, generator, seed):
    ids = torch.randint(0, 13, (2, 7), generator=generator)
    with torch.no_grad():
        out = tiny_model(device, seed, torch.float32)(ids.to(device)).double().cpu()
        ref = tiny_model("cpu", seed, torch.float64)(ids)
    # float32 through 2 blocks with LayerNorm, logits O(1): ~1e-6
    assert torch.allclose(out, ref, atol=1e-4)


def test_next_logits_crops_to_the_context(device, generator, seed):
    model = tiny_model(device, seed)
    ids = torch.randint(0, 13, (2, 14), generator=generator).to(device)
    with torch.no_grad():
        assert torch.allclose(model.next_logits(ids), model(ids[:, -10:])[:, -1])
    with pytest.raises(ValueError):
        model(ids)


def test_sampling_loop_is_reproducible_and_top1_is_greedy(device, seed):
    model = tiny_model(device, seed)
    prompt = torch.tensor([[1, 2, 3]], device=device).repeat(4, 1)
    with torch.no_grad():
        runs = [sample_decode(model.next_logits, prompt, 6, top_k=5, top_p=0.9,
                              generator=torch.Generator().manual_seed(seed + 5))[0] for _ in range(2)]
        assert torch.equal(runs[0], runs[1])
        top1, _ = sample_decode(model.next_logits, prompt, 6, top_k=1,
                                generator=torch.Generator().manual_seed(seed + 5))
        greedy, _ = greedy_decode(model.next_logits, prompt, 6)
    assert torch.equal(top1, greedy)


def test_weights_come_from_the_generator_alone(seed):
    """Same generator seed under two different global seeds: identical weights, N(0, 0.02), zero biases."""
    config = GPT2Config(vocab_size=11, n_positions=5, n_layer=1, n_embd=8, n_head=2, tie_embeddings=False)
    states = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        states.append(GPT2LM(config, generator=torch.Generator().manual_seed(seed)).state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert torch.equal(states[0]["blocks.0.mlp.fc.bias"], torch.zeros(32))
