"""SimHash: the cosine of two vectors estimated from the sign bits of shared random projections."""
import math

import torch

from spaces_code.random_projection import angle_between, cosine_from_bits, simhash
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same numbers whichever device computes
# pairs (u, v) in R^128 with prescribed cosines
u = torch.randn(5, 128, generator=generator).to(device)
noise = torch.randn(5, 128, generator=generator).to(device)
noise = noise - (noise * u).sum(-1, keepdim=True) / u.pow(2).sum(-1, keepdim=True) * u  # orthogonal to u
target_cos = torch.tensor([0.95, 0.7, 0.3, 0.0, -0.6], device=device)
v = target_cos[:, None] * u / u.norm(dim=-1, keepdim=True) \
    + (1 - target_cos[:, None] ** 2).sqrt() * noise / noise.norm(dim=-1, keepdim=True)
true_cos = torch.cos(angle_between(u, v))

print(f"{'true cos':>9} " + " ".join(f"{f'{n} bits':>10}" for n in (16, 64, 256, 1024, 4096)))
estimates = []
for n_bits in (16, 64, 256, 1024, 4096):
    bits = simhash(torch.cat([u, v]), n_bits, generator)
    estimates.append(cosine_from_bits(bits[:5], bits[5:]))
for k in range(5):
    cosines = [true_cos[k].item()] + [e[k].item() for e in estimates]
    print(" ".join(f"{round(c, 3) + 0.0:{10 if i else 9}.3f}" for i, c in enumerate(cosines)))  # no "-0.000"
print(f"standard error of the angle with n bits <= pi/(2 sqrt(n)): "
      f"{math.pi / (2 * math.sqrt(1024)):.3f} rad at 1024 bits")
