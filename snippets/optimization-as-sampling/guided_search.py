"""MLE-guided parameter search (Welleck & Cho) on a 257-parameter network: the error rate is the task
loss, the logistic loss is the MLE loss whose gradient only steers the proposal."""
import math

import matplotlib.pyplot as plt

from spaces_code import randomness
from spaces_code.runtime import make_generator, pick_device
from spaces_code.sampling_optimization import guided_search, mlp_classifier_losses, xor_dataset

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same draws whichever device computes

# 400 points in R^30 labelled by the sign of x1 * x2 (XOR): 28 of the 30 inputs are nuisance
features, labels = xor_dataset(400, 30, generator, device)
error_rate, logistic, dim = mlp_classifier_losses(features, labels, hidden=8)
theta0 = randomness.randn(dim, generator=generator, device=device) / math.sqrt(30)
print(f"tanh network 30 -> 8 -> 1: {dim} parameters; error rate at the start: {float(error_rate(theta0[None])):.3f}")

runs = {  # name: fraction of candidates drawn around the MLE gradient step
    "unguided: N(0, sigma^2 I)": 0.0,
    "MLE-guided: half around -eta grad": 0.5,
    "MLE-guided: all around -eta grad": 1.0,
}
curves = {}
print(f"{'proposal (32 candidates a step)':<36}" + "".join(f"{f'step {k}':>10}" for k in (50, 100, 150)))
for name, fraction in runs.items():
    _, losses = guided_search(error_rate, logistic, theta0, 150, alpha=0.002, scale=0.02, step=4.0,
                              guided_fraction=fraction, num_candidates=32, generator=generator)
    curves[name] = losses.cpu()
    print(f"{name:<36}" + "".join(f"{float(losses[k]):>10.3f}" for k in (50, 100, 150)))

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, losses in curves.items():
    ax.plot(losses, label=name)
ax.set(xlabel="step", ylabel="error rate (task loss)", ylim=(0, 0.6),
       title=f"Sampling the update of a {dim}-parameter network")
ax.legend(fontsize=8)
fig.tight_layout()
