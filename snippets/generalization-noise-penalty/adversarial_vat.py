"""The article's chain on a small classifier: adversarial step = gradient penalty; VAT; four regularisers,
and why noise and VAT act alike while the gradient penalty fades at a fit."""
import matplotlib.pyplot as plt
import torch

from spaces_code.runtime import make_generator, pick_device
from spaces_code.virtual_adversarial import (Classifier, TrainConfig, adversarial_step, binary_noise_terms,
                                             input_gradient, kl_hessian_vector, train_classifier, two_moons,
                                             vat_direction)

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same numbers on every device
ce = torch.nn.functional.cross_entropy

x, y = (t.to(device) for t in two_moons(40, 0.25, generator))  # 40 training points
x_test, y_test = (t.to(device) for t in two_moons(2000, 0.25, generator))

# 1. The adversarial step raises the loss by eps |grad l| to first order.
probe = Classifier(generator=make_generator(1)).double().to(device)
loss = lambda z: ce(probe(z), y, reduction="none")  # noqa: E731
norm = input_gradient(loss, x.double()).norm(dim=-1)
print(f"{'eps':>6} {'mean l(x+eps g/|g|) - l(x)':>27} {'mean eps |grad l|':>18}")
for eps in (0.1, 0.01, 0.001):
    rise = (loss(adversarial_step(loss, x.double(), eps)) - loss(x.double())).mean().item()
    print(f"{eps:6.3f} {rise:27.4e} {eps * norm.mean().item():18.4e}")

# 2. VAT: one power iteration already finds the worst direction (2 classes: the KL Hessian has rank one).
d = vat_direction(probe, x.double(), n_iter=1, generator=generator)
hd = kl_hessian_vector(probe, x.double(), d)
print(f"\nVAT, one power iteration: min |cos(Hd, d)| over 40 points = "
      f"{torch.nn.functional.cosine_similarity(hd, d, dim=-1).abs().min().item():.12f}")

# 3. Train the same initial network four ways.
runs = {"no regulariser": ("none", 0.0), "input noise, sigma=0.3": ("noise", 0.3),
        "gradient penalty, lambda=1": ("gradient_penalty", 1.0), "VAT, eps=0.5": ("vat", 0.5)}
# On test points: accuracy, the slope |grad_x m| of the margin m = f_1 - f_0, and the Fisher term
# p(1-p)|grad_x m|^2 (noise adds sigma^2/2 of it near a fit; it is also VAT's top KL eigenvalue).
# On the training points: the gradient penalty |grad_x l|^2 as a fraction of that Fisher term.
print(f"\n{'training':<28} {'test acc':>8} {'|grad m| test':>13} {'Fisher test':>11} {'train: GP / Fisher':>19}")
models = {}
for name, (regulariser, strength) in runs.items():
    model = Classifier(hidden=32, generator=make_generator(2)).to(device)
    train_classifier(model, x, y, TrainConfig(regulariser, strength, steps=300), generator)
    with torch.no_grad():
        accuracy = (model(x_test).argmax(-1) == y_test).float().mean().item()
    slope = input_gradient(lambda z: model(z)[:, 1] - model(z)[:, 0], x_test).norm(dim=-1).mean().item()
    test_terms, train_terms = binary_noise_terms(model, x_test, y_test), binary_noise_terms(model, x, y)
    share = (train_terms.gradient_penalty.sum() / train_terms.fisher.sum()).item()
    models[name] = model
    print(f"{name:<28} {accuracy:8.3f} {slope:13.2f} {test_terms.fisher.mean().item():11.3f} {share:19.3f}")

grid = torch.stack(torch.meshgrid(torch.linspace(-1.5, 2.5, 200), torch.linspace(-1.0, 1.5, 120),
                                  indexing="xy"), -1).reshape(-1, 2).to(device)
fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), sharey=True)
for ax, (name, model) in zip(axes, models.items()):
    with torch.no_grad():
        p = torch.softmax(model(grid), -1)[:, 1].reshape(120, 200).cpu()
    ax.contourf(torch.linspace(-1.5, 2.5, 200), torch.linspace(-1.0, 1.5, 120), p, levels=20, cmap="RdBu_r")
    ax.scatter(x[:, 0].cpu(), x[:, 1].cpu(), c=y.cpu(), cmap="bwr", edgecolors="k", s=18)
    ax.set_title(name, fontsize=9)
fig.tight_layout()
