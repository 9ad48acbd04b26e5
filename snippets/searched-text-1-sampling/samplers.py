"""Sample three-word "sentences" from an unnormalised score with three samplers; TV vs sample size."""
import matplotlib.pyplot as plt
import torch

from spaces_code.discrete_sampling import (
    empirical_distribution, gibbs_sampling, metropolis_hastings, mh_transition_matrix, normalize,
    rejection_acceptance_rate,
    rejection_sampling, single_site_proposal, total_variation,
)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same draws whichever device holds the table

# A toy bigram "language model": p~(x1, x2, x3) = exp(B[x1, x2] + B[x2, x3]); Z is never needed.
vocab = ["我", "爱", "学", "科学", "空间", "你"]
good_pairs = [("我", "爱"), ("我", "学"), ("爱", "科学"), ("爱", "你"), ("学", "科学"),
              ("科学", "空间"), ("你", "爱"), ("爱", "学")]
bigram = torch.full((6, 6), -1.0, device=device)
for a, b in good_pairs:
    bigram[vocab.index(a), vocab.index(b)] = 2.0
table = (bigram[:, :, None] + bigram[None, :, :]).exp()  # (6, 6, 6) joint table
target = table.reshape(-1)  # the same target on 216 flattened states
p = normalize(table).reshape(-1)

top = p.topk(4)
print("most probable sentences:", ", ".join(
    f"{vocab[i // 36]}{vocab[i // 6 % 6]}{vocab[i % 6]} {prob:.3f}" for prob, i in zip(top.values.tolist(), top.indices.tolist())))
print(f"rejection sampling from a uniform proposal keeps {float(rejection_acceptance_rate(target, torch.ones_like(target))):.1%}"
      " of the candidates")

samplers = {
    "rejection": lambda n: rejection_sampling(target, torch.ones_like(target), n, generator=generator),
    "MH (replace one word)": lambda n: metropolis_hastings(target, n, proposal=single_site_proposal((6, 6, 6), device),
                                                           num_chains=100, generator=generator),
    "Gibbs": lambda n: gibbs_sampling(table, n, num_chains=100, generator=generator),
}
sizes = [1_000, 4_000, 16_000, 64_000]
tv = {name: [float(total_variation(p, empirical_distribution(draw(n), (6, 6, 6)).reshape(-1))) for n in sizes]
      for name, draw in samplers.items()}

print(f"{'N':>7}" + "".join(f"{name:>24}" for name in tv))
for i, n in enumerate(sizes):
    print(f"{n:>7}" + "".join(f"{tv[name][i]:>24.3f}" for name in tv))

# An asymmetric proposal: draw a whole new sentence from the product of the three word marginals,
# q(y|x) = r(y). Only the Hastings factor q(x|y) / q(y|x) = r(x) / r(y) removes r from the result.
marginals = [normalize(table).sum(dim=tuple(j for j in range(3) if j != i)) for i in range(3)]
r = (marginals[0][:, None, None] * marginals[1][None, :, None] * marginals[2][None, None, :]).reshape(-1)
independence = r.expand(216, 216)
samples = metropolis_hastings(target, 64_000, proposal=independence, num_chains=100, generator=generator)
print(f"\nMH with q(y|x) = r(y) (unigram product, asymmetric): TV at N = 64000: "
      f"{float(total_variation(p, empirical_distribution(samples, 216))):.3f}; "
      f"exact kernel K: max |pK - p| = {float((p @ mh_transition_matrix(target, independence) - p).abs().max()):.1e}")
print(f"a chain that forgot the factor would sample p r / Z instead: TV(p, p r / Z) = "
      f"{float(total_variation(p, normalize(p * r))):.3f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, values in tv.items():
    ax.loglog(sizes, values, "o-", label=name)
reference = [tv["rejection"][0] * (sizes[0] / n) ** 0.5 for n in sizes]
ax.loglog(sizes, reference, "k--", lw=1, label=r"$\propto N^{-1/2}$")
ax.set_xlabel("number of samples N")
ax.set_ylabel("total variation to the target")
ax.set_title("Three samplers on 216 three-word sentences")
ax.legend(fontsize=8)
fig.tight_layout()
