"""Perturbed masking (https://kexue.fm/archives/7476)."""
import pytest
import torch

from spaces_code.attention_masks import attention
from spaces_code.perturbed_masking import (BigramMLM, PlantedMLM, adjacent_cohesion, impact_matrix,
                                           parse_tree, segment)


def tiny_transformer(vocab, dim, device, generator):
    """A random one-layer bidirectional attention model: some arbitrary masked-LM callable."""
    emb = torch.randn(vocab, dim, generator=generator, device=device, dtype=torch.float64)
    wq, wk, wv = (torch.randn(dim, dim, generator=generator, device=device, dtype=torch.float64) / dim ** 0.5
                  for _ in range(3))
    pos = torch.randn(32, dim, generator=generator, device=device, dtype=torch.float64)

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
    tokens = torch.randint(0, 11, (n,), generator=generator, device=device)
    f = impact_matrix(mlm, tokens, mask_id=11, batch_size=5)  # chunks that cut across rows
    assert torch.allclose(f.cpu(), naive_impact(mlm, tokens, 11), atol=1e-10)
    assert (f.diagonal() == 0).all()


def test_linear_mlm_impact_is_coupling_times_embedding_change(device, generator):
    n, vocab, dim = 6, 10, 5
    w = torch.randn(n, n, generator=generator, device=device, dtype=torch.float64)
    emb = torch.randn(vocab, dim, generator=generator, device=device, dtype=torch.float64)
    tokens = torch.randint(0, vocab - 1, (n,), generator=generator, device=device)
    f = impact_matrix(lambda x: w @ emb[x], tokens, mask_id=vocab - 1)
    # $f(x_i, x_j) = |W_{ij}|\,\Vert E_{x_j} - E_{mask}\Vert$ for i != j
    expected = w.abs() * (emb[tokens] - emb[vocab - 1]).norm(dim=-1)[None, :]
    expected.fill_diagonal_(0)
    assert torch.allclose(f, expected, atol=1e-12)


def random_structure(generator, n_phrases=3):
    words, phrases, w = [], [], 0
    for p in range(n_phrases):
        for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
            length = int(torch.randint(1, 4, (1,), generator=generator))
            words += [w] * length
            phrases += [p] * length
            w += 1
    return torch.tensor(words), torch.tensor(phrases)


def spans_of(ids):
    edges = [0] + [i for i in range(1, len(ids)) if ids[i] != ids[i - 1]] + [len(ids)]
    return list(zip(edges[:-1], edges[1:]))


def test_segmentation_and_tree_recover_planted_structure(device):
    generator = torch.Generator().manual_seed(0)
    for trial in range(20):
        word_ids, phrase_ids = random_structure(generator)
        word_ids, phrase_ids = word_ids.to(device), phrase_ids.to(device)
        n = word_ids.numel()
        model_gen = torch.Generator(device=device).manual_seed(trial)
        mlm = PlantedMLM(word_ids, phrase_ids, vocab_size=50, generator=model_gen)
        tokens = torch.randint(0, 49, (n,), generator=model_gen, device=device)
        f = impact_matrix(mlm, tokens, mask_id=49)
        threshold = 0.5 * adjacent_cohesion(f).max().item() if n > 1 else 0.0
        assert segment(f, threshold) == spans_of(word_ids.tolist())
        # the top split of the tree falls on a phrase boundary
        tree = parse_tree(f)
        if isinstance(tree, tuple) and len(set(phrase_ids.tolist())) > 1:
            last_left = tree[0]
            while isinstance(last_left, tuple):
                last_left = last_left[-1]
            assert phrase_ids[last_left] != phrase_ids[last_left + 1]


def test_segment_and_tree_edge_cases():
    one = torch.zeros(1, 1)
    assert segment(one, 0.1) == [(0, 1)]
    assert parse_tree(one) == 0
    f = torch.tensor([[0.0, 2.0, 0.1], [2.0, 0.0, 0.1], [0.1, 0.1, 0.0]])
    assert segment(f, 1.0) == [(0, 2), (2, 3)]
    assert segment(f, 0.0) == [(0, 3)]
    assert parse_tree(f) == ((0, 1), 2)


def test_bigram_mlm_reading_is_the_neighbour_posterior(device):
    vocab, mask = 6, 5  # id 0 = sentence boundary, id 5 = mask (never counted)
    gen = torch.Generator().manual_seed(3)
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
