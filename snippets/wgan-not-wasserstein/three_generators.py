"""One toy generator g(z) = a z + b, target N(0, 1), trained three ways on the same batches (B = 4):
WGAN-GP, the exact batch W1 as the loss, and a critic trained to convergence on every batch."""
import matplotlib.pyplot as plt

from spaces_code.runtime import make_generator, pick_device
from spaces_code.wgan_generators import METHODS, TrainConfig, train_generators

device = pick_device()
gen = make_generator(0)  # a CPU generator: the same numbers on every device
config = TrainConfig()  # B = 4, 150 generator steps, 5 batch pairs a step, start a = 0.3, b = 1
runs = 16  # independent generators per way, trained side by side
names = {"wgan-gp": "1. WGAN-GP", "batch-w1": "2. exact batch W1 as loss", "converged-critic": "3. converged critic"}
results = {m: train_generators(m, runs, config, gen, device) for m in METHODS}

print(f"{runs} runs per way, B = {config.batch}, {config.steps} generator steps, "
      f"lambda = {config.penalty}; means over the runs (but the worst run)")
print(f"{'':27s} {'true W1 at end':>14} {'(worst run)':>11} {'a at end':>9} {'b at end':>9} "
      f"{'critic value':>13} {'max |value - W1|':>17}")  # value: last 10 steps; max: along training
for m, r in results.items():
    w1 = r.true_w1.mean(1)  # (steps + 1,)
    value = r.estimate.mean(1)  # (steps,)
    print(f"{names[m]:27s} {w1[-1].item():14.3f} {r.true_w1[-1].max().item():11.3f} "
          f"{r.scale[-1].mean().item():9.3f} {r.shift[-1].mean().item():9.3f} "
          f"{value[-10:].mean().item():13.3f} {(value - w1[1:]).abs().max().item():17.3f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.6))
for (m, r), color in zip(results.items(), ("C0", "C3", "C2")):
    ax1.plot(r.true_w1.mean(1).cpu(), color=color, label=f"{names[m]}: true $W_1$")
    ax1.plot(range(1, config.steps + 1), r.estimate.mean(1).cpu(), color=color, ls=":", lw=1,
             label="  its critic's value")
    ax2.plot(r.scale.mean(1).cpu(), color=color, label=names[m])
    ax2.fill_between(range(config.steps + 1), r.scale.min(1).values.cpu(), r.scale.max(1).values.cpu(),
                     color=color, alpha=0.15)
ax1.set_ylim(0, 1.6)
ax1.set_xlabel("generator step")
ax1.set_title(r"true $W_1(p, g)$ (solid) and the critic's value (dotted)", fontsize=9)
ax1.legend(fontsize=6.5)
ax2.axhline(1.0, color="k", lw=0.8, ls="--")
ax2.set_xlabel("generator step")
ax2.set_ylabel("scale $a$ (target 1): mean, min-max of the runs")
ax2.legend(fontsize=7)
fig.tight_layout()
