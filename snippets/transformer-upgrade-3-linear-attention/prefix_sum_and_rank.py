"""Causal linear attention by prefix sums = the masked quadratic form; and the rank of the matrix."""
import torch

from spaces_code.attention_masks import causal_mask
from spaces_code.linear_attention import (attention_matrix_rank, elu_feature_map, feature_map_attention,
                                          quadratic_feature_attention)
from spaces_code.performer import gaussian_projection, positive_random_features
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # CPU generator: the same numbers whichever device runs
n, d = 256, 16
q, k, v = (torch.randn(n, d, generator=generator, dtype=torch.float64).to(device) for _ in range(3))
qf, kf = elu_feature_map(q), elu_feature_map(k)

prefix = feature_map_attention(qf, kf, v, causal=True)  # O(n): running sums S_i, z_i
quadratic = quadratic_feature_attention(qf, kf, v, causal_mask(n, device=device))  # O(n^2), masked
print(f"causal, n={n}: max |prefix sums - masked quadratic| = {(prefix - quadratic).abs().max().item():.1e}")
bidirectional = feature_map_attention(qf, kf, v)
print(f"bidirectional:  max |linear - quadratic|           = "
      f"{(bidirectional - quadratic_feature_attention(qf, kf, v)).abs().max().item():.1e}")

print(f"\nrank of the {n}x{n} attention matrix before normalisation (d = {d}):")
softmax_scores = torch.exp(q @ k.T / d**0.5)
print(f"  softmax exp(QK^T/sqrt d)                 {int(torch.linalg.matrix_rank(softmax_scores)):>4}")
print(f"  elu+1 features (m = d = {d})              {attention_matrix_rank(qf, kf):>4}")
for m in (64, 128):
    w = gaussian_projection(m, d, orthogonal=True, generator=generator, device=device, dtype=torch.float64)
    scale = d**-0.25
    q_features, k_features = positive_random_features(q * scale, w), positive_random_features(k * scale, w)
    rank = attention_matrix_rank(q_features, k_features)
    print(f"  Performer features (m = {m:<3})             {rank:>4}")
