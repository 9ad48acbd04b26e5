"""Optimisation by sampling dtheta ~ exp(-dl/alpha): the alpha -> 0 limit is a gradient step, and the
same sampler lowers a classifier's error rate, which has no useful gradient."""
import matplotlib.pyplot as plt
import torch

from spaces_code.runtime import make_generator, pick_device
from spaces_code.sampling_optimization import (
    cosine, logistic_loss, mean_step, minimize_by_sampling, sample_step, zero_one_loss,
)

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same draws whichever device computes

# two Gaussian classes in the plane; theta = (w1, w2, b) of the classifier sign(w.x + b)
labels = (torch.rand(200, generator=generator) < 0.5).long().to(device)
centres = torch.tensor([[-1.0, -0.5], [1.0, 0.8]], device=device)
features = centres[labels] + 0.8 * torch.randn(200, 2, generator=generator).to(device)
error_rate, smooth_loss = zero_one_loss(features, labels), logistic_loss(features, labels)
theta0 = torch.tensor([-1.0, -1.0, 0.5], device=device)

# 1) On a smooth loss: the step drawn from p(dtheta|theta) on the ball |dtheta| <= 0.05 turns into -grad l.
theta = theta0.clone().requires_grad_(True)
grad = torch.autograd.grad(smooth_loss(theta[None]).sum(), theta)[0]
print(f"{'alpha':>7}{'cos(E[dtheta], -grad)':>23}{'|E[dtheta]| / eps':>19}{'mean cos(sample, -grad)':>25}")
for alpha in (1.0, 0.1, 0.01, 0.001, 0.0):
    mean = mean_step(smooth_loss, theta0, alpha, radius=0.05, num_candidates=4096, generator=generator)
    samples = [cosine(sample_step(smooth_loss, theta0, alpha, 0.05, 4096, generator), -grad) for _ in range(20)]
    print(f"{alpha:>7}{cosine(mean, -grad):>23.3f}{float(mean.norm()) / 0.05:>19.2f}{sum(samples) / 20:>25.2f}")

# 2) On the error rate itself (piecewise constant: zero gradient almost everywhere).
print(f"\nerror rate at theta0: {float(error_rate(theta0[None])):.3f}")
runs = {}
for alpha in (0.1, 0.01, 0.001):
    path, errors = minimize_by_sampling(error_rate, theta0, steps=150, alpha=alpha, radius=0.2,
                                        num_candidates=64, generator=generator)
    runs[alpha] = (path, errors)
    print(f"alpha = {alpha:<6} error after 50 / 100 / 150 steps: "
          + " / ".join(f"{float(errors[k]):.3f}" for k in (50, 100, 150)))

# 3) A scale-aware ball |dtheta| <= 0.2 |theta|: the error rate cannot see |theta|, so neither does the walk.
for name, start in (("theta0", theta0), ("4 theta0", 4 * theta0)):
    for relative in (False, True):
        path, errors = minimize_by_sampling(error_rate, start, steps=150, alpha=0.01, radius=0.2, num_candidates=64,
                                            generator=make_generator(3), relative=relative)
        print(f"from {name:<8} {'radius 0.2 |theta|' if relative else 'radius 0.2':<18} error after 50 / 100 / 150 "
              "steps: " + " / ".join(f"{float(errors[k]):.3f}" for k in (50, 100, 150)))

fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.2))
for alpha, (path, errors) in runs.items():
    left.plot(errors.cpu(), label=rf"$\alpha={alpha}$")
left.set_xlabel("step")
left.set_ylabel("error rate (0-1 loss)")
left.set_title("sampling steps on a non-differentiable loss", fontsize=9)
left.legend(fontsize=8)
x = features.cpu()
right.scatter(x[:, 0], x[:, 1], c=labels.cpu(), cmap="coolwarm", s=8)
xs = torch.linspace(-3.5, 3.5, 2)
for theta, style, name in ((theta0, "k--", "start"), (runs[0.001][0][-1], "k-", r"end, $\alpha=0.001$")):
    w1, w2, b = theta.cpu().tolist()
    right.plot(xs, -(w1 * xs + b) / w2, style, label=name)
right.set_xlim(-3.5, 3.5)
right.set_ylim(-3.5, 3.5)
right.set_title("decision boundary", fontsize=9)
right.legend(fontsize=8, loc="lower right")
fig.tight_layout()
