"""A saturated prediction: gradient, gradient x input and integrated gradients side by side, and how the
completeness error of the midpoint rule falls with the number of steps."""
import copy

import matplotlib.pyplot as plt
import torch

from spaces_code.integrated_gradients import VOCAB, attribution_comparison, completeness_error, negation_task
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
model, _ = negation_task(make_generator(0), device=device)  # the model of the heat map above

words = "the movie was really good and really great".split()
sentence = torch.tensor([VOCAB.index(w) for w in words], device=device)
with torch.no_grad():
    p = torch.sigmoid(model(sentence[None])).item()
print(f"F = P(positive) = {p:.6f}; the zero baseline gives F = 0.5, so F(x) - F(baseline) = {p - 0.5:.4f}")
scores = attribution_comparison(model, sentence, steps=256)
for name, values in scores.items():
    print(f"{name:>21}: sum {values.sum().item():+.2e} | "
          + " ".join(f"{w}({v:+.1e})" for w, v in zip(words, values.tolist())))

fig, axes = plt.subplots(1, 3, figsize=(9, 2.8), sharey=True)
for ax, (name, values) in zip(axes, scores.items()):
    ax.barh(range(len(words)), values.cpu().numpy(), color="tab:red" if name.startswith("integrated") else "gray")
    ax.axvline(0, color="black", lw=0.5)
    ax.set_title(f"{name}\n(sum {values.sum().item():+.1e})", fontsize=9)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
axes[0].set_yticks(range(len(words)), words)
axes[0].invert_yaxis()
fig.tight_layout()

# completeness error |sum IG - (F(x) - F(0))| against steps, in float64 so that rounding stays out of sight
model64 = copy.deepcopy(model).double()
fig2, ax = plt.subplots(figsize=(4.6, 3.2))
steps = [64, 128, 256, 512, 1024, 2048, 4096]
for label, f in (("logit", model64.logit_from_embeddings), ("probability", model64.probability_from_embeddings)):
    embeddings = model64.embedding(sentence).detach()
    errors = [abs(completeness_error(f, embeddings, steps=s).item()) for s in steps]
    print(f"completeness error of the {label}: " + ", ".join(f"S={s}: {e:.1e}" for s, e in zip(steps, errors))
          + f"; doubling S from 1024 divides it by {errors[-3] / errors[-2]:.2f}")
    ax.loglog(steps, errors, "o-", label=label)
    if label == "logit":
        ax.loglog(steps, [errors[0] * (steps[0] / s) ** 2 for s in steps], "k--", lw=0.8, label="slope -2")
ax.set(xlabel="steps S", ylabel="|sum IG - (F(x) - F(0))|")
ax.legend(fontsize=8)
fig2.tight_layout()
