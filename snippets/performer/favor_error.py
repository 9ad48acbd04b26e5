"""FAVOR+: how well m positive random features reproduce exp(q.k/sqrt(d)) and softmax attention."""
import matplotlib.pyplot as plt
import torch

from spaces_code.attention_masks import attention
from spaces_code.performer import gaussian_projection, performer_attention, positive_random_features
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0, device)
n, d, repeats = 64, 16, 200
q, k = (0.5 * torch.randn(n, d, generator=generator, device=device) for _ in range(2))  # |q|^2 / sqrt(d) ~ 1
v = torch.randn(n, d, generator=generator, device=device)
scale = d**-0.25
kernel = torch.exp((q * scale) @ (k * scale).T)  # exact exp(q.k / sqrt(d)), (n, n)
exact = attention(q, k, v)

feature_counts = [8, 16, 32, 64, 128, 256]
errors = {}  # (orthogonal, m) -> (kernel error, attention error), averaged over fresh projections
for orthogonal in (False, True):
    for m in feature_counts:
        w = gaussian_projection(m, d, orthogonal, generator=generator, device=device,
                                draws=repeats)  # (repeats, m, d): independent projections
        estimate = positive_random_features(q * scale, w) @ positive_random_features(k * scale, w).mT
        kernel_err = ((estimate - kernel).norm(dim=(-2, -1)) / kernel.norm()).mean().item()
        attention_err = ((performer_attention(q, k, v, w) - exact).norm(dim=(-2, -1))
                         / exact.norm()).mean().item()
        errors[orthogonal, m] = (kernel_err, attention_err)

print("relative Frobenius error (mean of 200 projections), n=64, d=16")
print(f"{'m':>5} | {'exp(QK^T) iid':>13} {'orthogonal':>10} | {'attention iid':>13} {'orthogonal':>10}")
for m in feature_counts:
    (ki, ai), (ko, ao) = errors[False, m], errors[True, m]
    print(f"{m:>5} | {ki:>13.3f} {ko:>10.3f} | {ai:>13.3f} {ao:>10.3f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
for orthogonal, color in ((False, "C0"), (True, "C1")):
    label = "orthogonal" if orthogonal else "i.i.d."
    ax.loglog(feature_counts, [errors[orthogonal, m][0] for m in feature_counts], "o-", color=color,
              label=f"kernel exp(QK^T/sqrt d), {label}")
    ax.loglog(feature_counts, [errors[orthogonal, m][1] for m in feature_counts], "s--", color=color,
              label=f"attention output, {label}")
ax.loglog(feature_counts, [errors[False, 8][0] * (8 / m) ** 0.5 for m in feature_counts], "k:",
          label=r"$\propto 1/\sqrt{m}$")
ax.set_xlabel("number of random features m")
ax.set_ylabel("relative error")
ax.set_title("FAVOR+ positive random features (d = 16)")
ax.legend(fontsize=7)
fig.tight_layout()
