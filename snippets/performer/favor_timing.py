# spaces: timing-dependent
"""Wall-clock time of exact softmax attention vs. Performer (FAVOR+, m = 64) as the length grows."""
import torch

from spaces_code.attention_masks import attention
from spaces_code.performer import gaussian_projection, performer_attention
from spaces_code.runtime import best_time_ms, make_generator, pick_device

device = pick_device()
torch.set_num_threads(1)  # one CPU thread: steadier timings on a shared machine (no effect on CUDA)
generator = make_generator(0)  # CPU generator: the same numbers whichever device runs
d, m = 32, 64
w = gaussian_projection(m, d, orthogonal=True, generator=generator, device=device)


print(f"device {device.type}, d={d}, m={m}; best of 5, milliseconds")
print(f"{'n':>6} {'exact':>9} {'Performer':>10} {'ratio':>7}")
for n in (256, 512, 1024, 2048):
    q, k, v = (torch.randn(n, d, generator=generator).to(device) for _ in range(3))
    exact_ms = best_time_ms(lambda: attention(q, k, v), device)
    favor_ms = best_time_ms(lambda: performer_attention(q, k, v, w), device)
    print(f"{n:>6} {exact_ms:>9.2f} {favor_ms:>10.2f} {exact_ms / favor_ms:>7.1f}")
