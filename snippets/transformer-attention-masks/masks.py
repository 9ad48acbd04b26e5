"""Four pre-training schemes, one Transformer: only the attention mask changes."""
import matplotlib.pyplot as plt
import torch

from spaces_code.attention_masks import (attention, bidirectional_mask, causal_mask, permutation_mask,
                                         prefix_lm_mask)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # CPU generator: the same numbers whichever device runs
n, d = 6, 8
order = torch.tensor([2, 4, 0, 5, 1, 3], device=device)  # XLNet: generate position 2 first, then 4, ...
masks = {
    "BERT: bidirectional": bidirectional_mask(n, device),
    "GPT: causal": causal_mask(n, device),
    "UniLM: prefix 3 + causal": prefix_lm_mask(3, n, device),
    # XLNet's two streams: the content stream h may see its own token (it feeds later steps); the query
    # stream g, which predicts the token, sees only strictly earlier steps of the order, never itself
    "XLNet content stream": permutation_mask(order, include_self=True),
    "XLNet query stream": permutation_mask(order, include_self=False),
}

x = torch.randn(n, d, generator=generator).to(device)
w_q, w_k, w_v = (torch.randn(d, d, generator=generator).to(device) / d**0.5 for _ in range(3))

print(f"XLNet order: {order.tolist()} (position 2 is generated first)")
print(f"{'mask':<26} {'allowed':>7}  {'max |dy_i/dx_j|, forbidden':>27}  {'min, allowed':>12}")
for name, mask in masks.items():
    jac = torch.autograd.functional.jacobian(
        lambda inputs: attention(inputs @ w_q, inputs @ w_k, inputs @ w_v, mask), x)
    influence = jac.abs().amax(dim=(1, 3))  # (n, n): how much x_j moves y_i
    forbidden = ~mask & ~torch.eye(n, dtype=torch.bool, device=device)
    worst = influence[forbidden].max().item() if forbidden.any() else 0.0
    allowed = influence[mask].min().item() if mask.any() else float("nan")
    print(f"{name:<26} {int(mask.sum()):>7}  {worst:>27.1f}  {allowed:>12.1e}")

fig, axes = plt.subplots(1, 5, figsize=(12.5, 3.4))
for ax, (name, mask) in zip(axes, masks.items()):
    ax.imshow(mask.cpu(), cmap="Blues", vmin=0, vmax=1.3)
    ax.set_title(name, fontsize=9)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("key j")
axes[0].set_ylabel("query i")
fig.suptitle("Attention masks (blue = may attend)")
fig.tight_layout()
