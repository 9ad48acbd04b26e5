"""Perturbed masking (https://kexue.fm/archives/7476)."""
import pytest
import torch

from spaces_code.attention_masks import attention
from spaces_code.perturbed_masking import (BigramMLM, PlantedMLM, adjacent_cohesion, impact_matrix,
                                           parse_tree, segment)


def tiny_transformer(vocab, dim, device, generator):
    """A random one-layer bidirectional attention model: some arbitrary masked-LM callable."""
    emb = torch.randn(vocab, dim, generator=generator, dtype=torch.float64).to(device)
    wq, wk, wv = (torch.randn(dim, dim, generator=generator, dtype=torch.float64).to(device) / dim ** 0.5
                  for _ in range(3))
    pos = torch.randn(32, dim, generator=generator, dtype=torch.float64).to(device)

    def mlm(tokens):
        x = emb[tokens] + pos[:tokens.shape[1]]
        return torch.tanh(x + attention(x @ wq, x @ wk, x @ wv))
    return mlm


def naive_impact(mlm, tokens, mask_id):
    n = tokens.numel()
    f = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        xi = tokens.clone()
        xi[i] = mask_id
        hi = mlm(xi[None])[0, i]
        for j in range(n):
            if j != i:
                xij = xi.clone()
                xij[j] = mask_id
                f[i, j] = (hi - mlm(xij[None])[0, i]).norm().item()
    return f


@pytest.mark.parametrize("n", [1, 2, 7])
def test_impact_matrix_matches_naive_loops(device, generator, n):
    mlm = tiny_transformer(12, 8, device, generator)
    tokens = torch.randint(0, 11, (n,), generator=generator).to(device)
    f = impact_matrix(mlm, tokens, mask_id=11, batch_size=5)  # chunks that cut across rows
    assert torch.allclose(f.cpu(), naive_impact(mlm, tokens, 11), atol=1e-10)
    assert (f.diagonal() == 0).all()


def test_linear_mlm_impact_is_coupling_times_embedding_change(device, generator):
    n, vocab, dim = 6, 10, 5
    w = torch.randn(n, n, generator=generator, dtype=torch.float64).to(device)
    emb = torch.randn(vocab, dim, generator=generator, dtype=torch.float64).to(device)
    tokens = torch.randint(0, vocab - 1, (n,), generator=generator).to(device)
    f = impact_matrix(lambda x: w @ emb[x], tokens, mask_id=vocab - 1)
    # $f(x_i, x_j) = |W_{ij}|\,\Vert E_{x_j} - E_{mask}\Vert$ for i != j
    expected = w.abs() * (emb[tokens] - emb[vocab - 1]).norm(dim=-1)[None, :]
    expected.fill_diagonal_(0)
    assert torch.allclose(f, expected, atol=1e-12)


def random_structure(generator, n_phrases=3):
    """Word and phrase ids of a random sentence: 3 phrases of 1-3 words of 1-3 characters.

    A phrase has at least two characters: a one-character phrase has no inside, so its normalised cut
    is ~1 whatever its coupling and the top split need not fall next to it (the former flake: 27 of
    2000 draws, all with a one-character phrase).
    """
    words, phrases, w = [], [], 0
    for p in range(n_phrases):
        n_words = int(torch.randint(1, 4, (1,), generator=generator))
        lengths = [int(torch.randint(1, 4, (1,), generator=generator)) for _ in range(n_words)]
        if sum(lengths) == 1:
            lengths = [2]
        for length in lengths:
            words += [w] * length
            phrases += [p] * length
            w += 1
    return torch.tensor(words), torch.tensor(phrases)


def spans_of(ids):
    edges = [0] + [i for i in range(1, len(ids)) if ids[i] != ids[i - 1]] + [len(ids)]
    return list(zip(edges[:-1], edges[1:]))


# Planted levels of the tests: W = 1 inside a word, 0.2 inside a phrase, 0.02 across phrases. In the
# near-linear range f(x_i, x_j) ~ W_ij ||E_{x_j} - E_mask||, and that norm varies by ~10% (dim 64).
WORD, PHRASE, OTHER = 1.0, 0.2, 0.02
# Sweep of 4000 random structures: adjacent cohesion inside a word >= 0.980, across words <= 0.356
# (levels 1 vs 0.2, a factor 5 apart; the embedding norms eat part of it). The threshold is their
# geometric mean, 1.66x from each extreme, not a fraction of the sentence's own maximum: the former
# 0.5 * max failed whenever no word had two characters (6 of 2000 draws).
THRESHOLD = (0.980 * 0.356) ** 0.5  # 0.59


def test_segmentation_and_tree_recover_planted_structure(device, generator):
    for _ in range(20):
        word_ids, phrase_ids = random_structure(generator)
        n = word_ids.numel()
        mlm = PlantedMLM(word_ids.to(device), phrase_ids.to(device), vocab_size=50, word=WORD, phrase=PHRASE,
                         other=OTHER, generator=generator)
        tokens = torch.randint(0, 49, (n,), generator=generator).to(device)
        f = impact_matrix(mlm, tokens, mask_id=49)
        assert segment(f, THRESHOLD) == spans_of(word_ids.tolist())
        # the top split of the tree falls on a phrase boundary (sweep of 4000 structures: no exception)
        tree = parse_tree(f)
        last_left = tree[0]
        while isinstance(last_left, tuple):
            last_left = last_left[-1]
        assert phrase_ids[last_left] != phrase_ids[last_left + 1]


def test_planted_mlm_comes_from_the_generator_only(seed):
    """Same generator seed under two different global seeds: identical embeddings."""
    word_ids, phrase_ids = torch.tensor([0, 0, 1]), torch.tensor([0, 0, 0])
    models = []
    for global_seed in (seed + 1, seed + 2):
        torch.manual_seed(global_seed)
        models.append(PlantedMLM(word_ids, phrase_ids, 10, generator=torch.Generator().manual_seed(seed)))
    assert torch.equal(models[0].embedding, models[1].embedding)


def test_impact_on_device_matches_cpu(device, generator, seed):
    """Device parity: one planted model built from the same CPU stream on each device (float32),
    its impact matrix within float32 rounding of a float64 reference computed on CPU."""
    word_ids, phrase_ids = random_structure(generator)
    n = word_ids.numel()
    tokens = torch.randint(0, 49, (n,), generator=generator)
    on_cpu = PlantedMLM(word_ids, phrase_ids, 50, generator=torch.Generator().manual_seed(seed))
    on_device = PlantedMLM(word_ids.to(device), phrase_ids.to(device), 50,
                           generator=torch.Generator().manual_seed(seed))
    f_cpu = impact_matrix(on_cpu, tokens, mask_id=49)
    f_device = impact_matrix(on_device, tokens.to(device), mask_id=49).cpu()
    reference = impact_matrix(on_cpu.double(), tokens, mask_id=49)
    # entries are O(1) differences of tanh values of O(1): float32 rounding is ~1e-7, allow 1e-5
    torch.testing.assert_close(f_device, f_cpu, rtol=0, atol=1e-5)
    torch.testing.assert_close(f_device.double(), reference, rtol=0, atol=1e-5)


def test_segment_and_tree_edge_cases():
    one = torch.zeros(1, 1)
    assert segment(one, 0.1) == [(0, 1)]
    assert parse_tree(one) == 0
    f = torch.tensor([[0.0, 2.0, 0.1], [2.0, 0.0, 0.1], [0.1, 0.1, 0.0]])
    assert segment(f, 1.0) == [(0, 2), (2, 3)]
    assert segment(f, 0.0) == [(0, 3)]
    assert parse_tree(f) == ((0, 1), 2)


def test_bigram_mlm_reading_is_the_neighbour_posterior(device, generator):
    vocab, mask = 6, 5  # id 0 = sentence boundary, id 5 = mask (never counted)
    gen = generator
    sentences = [torch.randint(1, 5, (int(torch.randint(1, 8, (1,), generator=gen)),), generator=gen)
                 for _ in range(40)]
    counts = BigramMLM.count(sentences, vocab)
    assert counts.sum() == sum(len(s) + 1 for s in sentences)
    mlm = BigramMLM(counts.to(device), mask_id=mask, smoothing=0.5)
    p_next = (counts + 0.5) / (counts + 0.5).sum(1, keepdim=True)  # float64 reference on CPU
    p_uni = (counts + 0.5).sum(0) / (counts + 0.5).sum()
    tokens = torch.tensor([[3, 1, 4, 2], [3, mask, 4, mask]], device=device)
    out = mlm(tokens).double().cpu() ** 2  # readings are square roots of probabilities
    assert torch.allclose(out.sum(-1), torch.ones(2, 4, dtype=torch.float64), atol=1e-5)
    # $p(c|l, r) \propto p(c|l)\,p(r|c)$; a masked left -> unigram, a masked right -> no factor
    expected = {
        (0, 0): p_next[0] * p_next[:, 1],  # after the sentence start, before token 1
        (0, 3): p_next[4] * p_next[:, 0],  # before the sentence end
        (1, 0): p_next[0],  # right neighbour masked
        (1, 2): p_uni,  # both neighbours masked
        (1, 3): p_next[4] * p_next[:, 0],
    }
    for (b, i), ref in expected.items():
        assert torch.allclose(out[b, i], ref / ref.sum(), atol=1e-5), (b, i)


def test_bigram_read_is_forward_at_the_read_positions(device, generator):
    """BigramMLM.read computes only the position impact_matrix reads: the same numbers as forward
    (the same elementwise ops), and impact_matrix gives the same matrix with or without it."""
    vocab, mask = 9, 8
    sentences = [torch.randint(1, 8, (int(torch.randint(2, 9, (1,), generator=generator)),), generator=generator)
                 for _ in range(30)]
    mlm = BigramMLM(BigramMLM.count(sentences, vocab).to(device), mask_id=mask, smoothing=0.3)
    tokens = torch.randint(1, 9, (50, 7), generator=generator).to(device)  # includes masks (id 8)
    positions = torch.randint(0, 7, (50,), generator=generator).to(device)
    expected = mlm(tokens)[torch.arange(50, device=device), positions]
    torch.testing.assert_close(mlm.read(tokens, positions), expected, rtol=0, atol=0)
    sentence = torch.randint(1, 8, (11,), generator=generator).to(device)
    without_read = impact_matrix(lambda x: mlm(x), sentence, mask_id=mask, batch_size=37)
    torch.testing.assert_close(impact_matrix(mlm, sentence, mask_id=mask, batch_size=37), without_read,
                               rtol=0, atol=0)
