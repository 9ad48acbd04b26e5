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
    logits = torch.randn(3, 5, 11, generator=generator).to(device)
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
    logits = torch.randn(200, 9, generator=generator, dtype=torch.float64).to(device) * 2
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


def test_exact_non_termination_matches_sampling(device, generator):
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
        # binomial count: |z| > 5 has probability < 6e-7 (normal tail; n p (1 - p) >= 190 here), any stream
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


def test_beam_search_with_one_beam_is_greedy_on_the_looping_toy(device):
    """The article's point: deterministic decoding need not stop. One beam = greedy = “不错不错…”."""
    _, next_logits = toy(device)
    prompt = torch.tensor([BOS], device=device)
    greedy, finished = greedy_decode(next_logits, prompt[None], 30, EOS)
    tokens, score, beam_finished = beam_search(next_logits, prompt, 30, EOS, beam_size=1)
    assert not finished.any() and not beam_finished  # eos (p = 0.05) is never the argmax in the loop
    assert tokens.tolist() == greedy[0].tolist()
    log_probs, _ = toy("cpu")
    expected = sum(float(log_probs[a, b]) for a, b in zip(tokens.tolist(), tokens.tolist()[1:]))
    assert score == pytest.approx(expected, abs=1e-9)


def test_beam_search_with_one_beam_equals_greedy_on_random_models(device, generator):
    """On random bigram models, beam size 1 ends (or not) exactly where greedy does, with its tokens."""
    vocab = 7
    for _ in range(40):
        log_probs = (3 * torch.randn(vocab, vocab, generator=generator, dtype=torch.float64)).log_softmax(-1)
        log_probs = log_probs.to(device)
        next_logits = (lambda lp: (lambda tokens: lp[tokens[:, -1]]))(log_probs)
        start = int(torch.randint(2, vocab, (1,), generator=generator))
        prompt = torch.tensor([start], device=device)
        greedy, finished = greedy_decode(next_logits, prompt[None], 12, EOS)
        tokens, _, beam_finished = beam_search(next_logits, prompt, 12, EOS, beam_size=1)
        assert beam_finished == bool(finished[0])
        if beam_finished:  # greedy pads with eos after the first one
            assert tokens.tolist() == greedy[0, :tokens.numel()].tolist() and tokens[-1] == EOS
        else:
            assert tokens.tolist() == greedy[0].tolist()


def test_beam_search_accepts_eos_only_from_the_top_k(device):
    """Two beams; eos is the 3rd best extension at step 1, so it must not end a hypothesis there."""
    probs = torch.tensor([
        # <bos> <eos>  a     b
        [0.00, 0.20, 0.45, 0.35],  # <bos>: eos ranks 3rd
        [0.00, 1.00, 0.00, 0.00],  # <eos>
        [0.00, 0.90, 0.05, 0.05],  # a: eos best
        [0.00, 0.90, 0.05, 0.05],  # b
    ], dtype=torch.float64, device=device)
    next_logits = (lambda tokens: probs.log()[tokens[:, -1]])
    tokens, score, finished = beam_search(next_logits, torch.tensor([BOS], device=device), 5, EOS, beam_size=2)
    assert finished and tokens.tolist() == [BOS, 2, EOS]  # log(0.45 * 0.9) = -0.904 > log(0.2) = -1.609
    # with one step only, the top-2 are a and b: nothing has ended, eos (p = 0.2) was outside the top 2
    tokens, score, finished = beam_search(next_logits, torch.tensor([BOS], device=device), 1, EOS, beam_size=2)
    assert not finished and tokens.tolist() == [BOS, 2] and score == pytest.approx(math.log(0.45))
    with pytest.raises(ValueError):
        beam_search(next_logits, torch.tensor([BOS], device=device), 1, EOS, beam_size=0)


def test_sampling_on_device_matches_cpu(device, seed):
    """A CPU generator gives the same sampled tokens whichever device runs the model."""
    results = []
    for where in ("cpu", device):
        _, next_logits = toy(where)
        prompt = torch.full((64, 1), BOS, device=where)
        tokens, finished = sample_decode(next_logits, prompt, 20, eos=EOS, top_k=2, consistent=True,
                                         generator=torch.Generator().manual_seed(seed))
        assert tokens.device.type == torch.device(where).type
        results.append((tokens.cpu(), finished.cpu()))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    # and the draw depends on the generator alone
    torch.manual_seed(seed + 1)
    _, next_logits = toy("cpu")
    again, _ = sample_decode(next_logits, torch.full((64, 1), BOS), 20, eos=EOS, top_k=2, consistent=True,
                             generator=torch.Generator().manual_seed(seed))
    assert torch.equal(again, results[0][0])


def test_self_terminating_is_a_distribution_with_growing_eos(device, generator):
    epsilon = 0.1
    logits = torch.randn(4, 30, 7, generator=generator, dtype=torch.float64).to(device) * 3
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
