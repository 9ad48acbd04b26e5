# spaces: timing-dependent
"""Time vs. length: quadratic softmax attention against linear attention (bidirectional and causal)."""
import matplotlib.pyplot as plt
import torch

from spaces_code.attention_masks import attention, causal_mask
from spaces_code.linear_attention import linear_attention
from spaces_code.runtime import best_time_ms, make_generator, pick_device

device = pick_device()
torch.set_num_threads(1)  # one CPU thread: steadier timings on a shared machine (no effect on CUDA)
generator = make_generator(0)  # CPU generator: the same numbers whichever device runs
d = 32
lengths = [128, 256, 512, 1024, 2048]


results = {"softmax (quadratic)": [], "softmax, causal mask": [], "linear": [], "linear, causal": []}
for n in lengths:
    q, k, v = (torch.randn(n, d, generator=generator).to(device) for _ in range(3))
    mask = causal_mask(n, device=device)
    results["softmax (quadratic)"].append(best_time_ms(lambda: attention(q, k, v), device))
    results["softmax, causal mask"].append(best_time_ms(lambda: attention(q, k, v, mask), device))
    results["linear"].append(best_time_ms(lambda: linear_attention(q, k, v), device))
    results["linear, causal"].append(best_time_ms(lambda: linear_attention(q, k, v, causal=True), device))

print(f"device {device.type}, d={d}; best of 5, milliseconds")
print(f"{'n':>6}" + "".join(f"{name:>22}" for name in results))
for i, n in enumerate(lengths):
    print(f"{n:>6}" + "".join(f"{times[i]:>22.2f}" for times in results.values()))

fig, ax = plt.subplots(figsize=(6, 3.5))
for (name, times), style in zip(results.items(), ("o-", "o--", "s-", "s--")):
    ax.loglog(lengths, times, style, label=name)
ax.set_xticks(lengths, [str(n) for n in lengths])
ax.minorticks_off()
ax.set_xlabel("sequence length n")
ax.set_ylabel("time (ms)")
ax.set_title(f"attention time vs. length (d = {d}, {device.type})")
ax.legend(fontsize=8)
fig.tight_layout()
