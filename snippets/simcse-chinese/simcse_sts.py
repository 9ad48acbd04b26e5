"""A toy STS evaluation: Spearman of the untrained encoder, BERT-whitening, and unsupervised SimCSE."""
import matplotlib.pyplot as plt
import torch

from spaces_code.runtime import make_generator, pick_device
from spaces_code.simcse import TinyEncoder, sts_spearman, toy_sts, train_simcse

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same numbers on every device

# 300 scored pairs (gold = shared content words, 0..6) and 1000 unlabelled sentences for SimCSE
a, b, gold = (t.to(device) for t in toy_sts(300, generator=generator))
unlabelled = torch.cat(toy_sts(500, generator=generator)[:2]).to(device)
print("pair 0:", a[0].tolist(), "\n       ", b[0].tolist(), " gold", gold[0].item(), "(ids 1, 2: stop words)")
encoder = TinyEncoder(409, 16, dim=32, n_head=4, p_drop=0.1, generator=generator).to(device)

steps, curve = [0], [(sts_spearman(encoder, a, b, gold).item(), sts_spearman(encoder, a, b, gold, True).item())]
optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-2)
for _ in range(4):
    train_simcse(encoder, unlabelled, 15, generator=generator, optimizer=optimizer)  # 15 more steps
    steps.append(steps[-1] + 15)
    curve.append((sts_spearman(encoder, a, b, gold).item(), sts_spearman(encoder, a, b, gold, True).item()))

print(f"{'Spearman x 100':<34}{'cos':>6}{'whitened':>10}")
print(f"{'untrained encoder, mean pooling':<34}{100 * curve[0][0]:>6.1f}{100 * curve[0][1]:>10.1f}")
print(f"{'SimCSE, ' + str(steps[-1]) + ' steps':<34}{100 * curve[-1][0]:>6.1f}{100 * curve[-1][1]:>10.1f}")

fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(steps, [c[0] for c in curve], "o-", label="SimCSE, cosine")
ax.plot(steps, [c[1] for c in curve], "s--", label="SimCSE + whitening")
ax.axhline(curve[0][0], color="gray", lw=0.8, label="untrained")
ax.axhline(curve[0][1], color="black", ls=":", lw=0.8, label="untrained + whitening")
ax.set(xlabel="SimCSE training steps", ylabel="Spearman vs gold", ylim=(0, 1))
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
