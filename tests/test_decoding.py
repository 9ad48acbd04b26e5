"""Decoding and the “never stops” problem (https://kexue.fm/archives/7500)."""
import itertools
import math

import pytest
import torch

from spaces_code.decoding import (beam_search, bigram_lm, continue_logits, decoding_transition_matrix,
                                  filter_logits, greedy_decode, looping_toy_model,
                                  non_termination_probability, sample_decode, self_terminating,
                                  self_terminating_log_probs, top_k_filter, top_p_filter)

BOS, EOS = 0, 1


def toy(device):
    vocab, log_probs = looping_toy_model(device)
    model = bigram_lm(log_probs)
    return log_probs, (lambda tokens: model(tokens)[:, -1])


def test_greedy_loops_forever(device):
    _, next_logits = toy(device)
    tokens, finished = greedy_decode(next_logits, torch.zeros(2, 1, dtype=torch.long, device=device), 50, EOS)
    assert not finished.any()
    assert (tokens[:, 3:] == 4).all()  # “不错” forever


def test_top_k_filter_keeps_k_largest_and_eos(device, generator):
    logits = torch.randn(3, 5, 11, generator=generator, device=device)
    out = top_k_filter(logits, 4)
    kept = torch.isfinite(out)
    assert (kept.sum(-1) == 4).all()
    assert torch.equal(out[kept], logits[kept])
    smallest_kept = out.masked_fill(~kept, math.inf).min(-1).values
    assert (logits.masked_fill(kept, -math.inf).max(-1).values < smallest_kept).all()
    forced = top_k_filter(logits, 4, keep=7)
    assert torch.isfinite(forced[..., 7]).all()
    assert torch.equal(top_k_filter(logits, 50), logits)  # k larger than the vocabulary


def test_top_p_filter_is_smallest_set_reaching_p(device, generator):
    logits = torch.randn(200, 9, generator=generator, device=device, dtype=torch.float64) * 2
    for p in (0.1, 0.5, 0.9, 0.999):
        out = top_p_filter(logits, p)
        probs = logits.softmax(-1)
        kept = torch.isfinite(out)
        mass = (probs * kept).sum(-1)
        assert (mass >= p - 1e-12).all()
        # dropping the least probable kept token falls below p (minimality), unless one token is kept
        least = probs.masked_fill(~kept, math.inf).min(-1).values
        assert ((mass - least < p) | (kept.sum(-1) == 1)).all()
    assert torch.isfinite(top_p_filter(logits, 1.0)).all()
    assert torch.isfinite(top_p_filter(logits, 0.1, keep=3)[:, 3]).all()


@pytest.mark.parametrize("top_k, top_p", [(2, None), (None, 0.75)])
def test_inconsistent_sampling_never_stops_consistent_does(device, top_k, top_p):
    log_probs, _ = toy(device)
    bad = decoding_transition_matrix(log_probs, top_k, top_p, EOS, consistent=False)
    good = decoding_transition_matrix(log_probs, top_k, top_p, EOS, consistent=True)
    p_bad = non_termination_probability(bad, BOS, EOS, 400)
    p_good = non_termination_probability(good, BOS, EOS, 400)
    assert p_bad[-1] > 1 - 1e-9  # eos is never a candidate once the chain is inside {天气, 不错}
    # consistent: non-increasing and geometric decay, P(no eos within 400 steps) is negligible
    assert (p_good[1:] <= p_good[:-1] + 1e-15).all()
    assert p_good[400] < 1e-10
    rate = (p_good[400] / p_good[200]) ** (1 / 200)
    assert rate < 0.96


def test_exact_non_termination_matches_sampling(device):
    generator = torch.Generator(device=device).manual_seed(7)
    log_probs, next_logits = toy(device)
    n, steps = 4000, 15
    prompt = torch.full((n, 1), BOS, device=device)
    for top_k, consistent in ((None, False), (2, True), (2, False)):
        _, finished = sample_decode(next_logits, prompt, steps, eos=EOS, top_k=top_k,
                                    consistent=consistent, generator=generator)
        exact = non_termination_probability(
            decoding_transition_matrix(log_probs, top_k, None, EOS, consistent), BOS, EOS, steps)[-1]
        empirical = 1 - finished.double().mean()
        sigma = math.sqrt(max(exact * (1 - exact), 1e-12) / n)
        assert abs(empirical - exact) <= 5 * sigma + 1e-12


def test_beam_search_with_huge_beam_is_exact_search(device):
    log_probs, next_logits = toy(device)
    max_len = 5
    best, best_score = None, -math.inf
    for length in range(1, max_len + 1):  # brute force over all sequences ending in eos
        for body in itertools.product(range(2, 6), repeat=length - 1):
            seq = [BOS, *body, EOS]
            score = sum(float(log_probs[a, b]) for a, b in zip(seq, seq[1:]))
            if score > best_score:
                best, best_score = seq, score
    tokens, score, finished = beam_search(next_logits, torch.tensor([BOS], device=device), max_len, EOS,
                                          beam_size=6 ** max_len)
    assert finished and tokens.tolist() == best
    assert score == pytest.approx(best_score, abs=1e-12)


def test_self_terminating_is_a_distribution_with_growing_eos(device, generator):
    epsilon = 0.1
    logits = torch.randn(4, 30, 7, generator=generator, device=device, dtype=torch.float64) * 3
    logits[..., EOS] += 6  # a model that strongly wants to continue
    log_probs = self_terminating_log_probs(logits, EOS, epsilon)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(4, 30, dtype=torch.float64, device=device),
                          atol=1e-12)
    t = torch.arange(1, 31, dtype=torch.float64, device=device)
    p_eos = log_probs[..., EOS].exp()
    assert (p_eos >= 1 - (1 - epsilon) ** t - 1e-12).all()
    assert (p_eos[:, 1:] >= p_eos[:, :-1] - 1e-12).all()  # 1 - alpha_t is non-decreasing
    # the non-eos tokens keep the original softmax ratios
    others = log_probs[..., 2:] - log_probs[..., 2:].logsumexp(-1, keepdim=True)
    assert torch.allclose(others, logits[..., 2:].log_softmax(-1), atol=1e-10)
    # float32 on this device agrees with the float64 result
    log_probs32 = self_terminating_log_probs(logits.float(), EOS, epsilon)
    assert torch.allclose(log_probs32.double().exp(), log_probs.exp(), atol=1e-5)


def test_self_terminating_greedy_stops_within_the_bound(device):
    vocab, log_probs = looping_toy_model(device)
    model = bigram_lm(continue_logits(log_probs, EOS))
    for epsilon in (0.01, 0.05, 0.3):
        bound = math.ceil(math.log(0.5) / math.log(1 - epsilon))  # then p(eos) > 1/2 wins the argmax
        prompt = torch.full((1, 1), BOS, device=device)
        _, finished = greedy_decode(self_terminating(model, EOS, epsilon), prompt, bound, EOS)
        assert finished.all()


def test_continue_logits_round_trip(device):
    _, log_probs = looping_toy_model(device)
    rows = log_probs[2:6]  # rows with 0 < p(eos) < 1
    s = continue_logits(rows, EOS)[:, EOS]
    assert torch.allclose(torch.sigmoid(-s), rows[:, EOS].exp(), atol=1e-12)


def test_filter_logits_combines_both(device):
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]], device=device)
    out = filter_logits(logits, top_k=3, top_p=0.5, keep=4)
    assert torch.isfinite(out).tolist() == [[True, False, False, False, True]]


def test_invalid_arguments_are_rejected(device):
    logits = torch.zeros(2, 5, device=device)
    with pytest.raises(ValueError):
        top_k_filter(logits, 0)
    for p in (0.0, 1.5):
        with pytest.raises(ValueError):
            top_p_filter(logits, p)
    with pytest.raises(ValueError):
        self_terminating_log_probs(logits[:, None], EOS, epsilon=0.0)
    _, next_logits = toy(device)
    prompt = torch.zeros(1, 1, dtype=torch.long, device=device)
    with pytest.raises(ValueError):
        sample_decode(next_logits, prompt, 3, consistent=True)  # no eos given
    with pytest.raises(ValueError):
        sample_decode(next_logits, prompt, 3, eos=EOS, temperature=0.0)
