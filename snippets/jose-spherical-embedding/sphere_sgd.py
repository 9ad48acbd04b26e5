"""Train toy word/context/document vectors on the unit sphere with three update rules."""
import matplotlib.pyplot as plt
import torch

from spaces_code.runtime import make_generator, pick_device
from spaces_code.spherical_embedding import (
    STEP_RULES, JoSEConfig, SphericalEmbedding, sphere_step, tangent_projection, topic_corpus, train_jose,
)

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same numbers on every device

# One step from the same point: renormalised Euclidean and Riemannian steps agree to first order in lr.
x = torch.nn.functional.normalize(torch.randn(1000, 8, generator=generator).to(device), dim=-1)
g = torch.randn(1000, 8, generator=generator).to(device)
print(f"max |x . (I - xx^T)g| = {tangent_projection(x, g).mul(x).sum(-1).abs().max():.1e}")
for lr in (0.01, 0.1, 1.0):
    gap = (sphere_step(x, g, lr, "euclidean") - sphere_step(x, g, lr, "riemannian")).norm(dim=-1).mean()
    print(f"lr = {lr:<4}  mean |euclidean step - riemannian step| = {gap:.1e}")

# Three topics, 8 documents each; words co-occur inside their topic (10% noise).
triples = topic_corpus(num_topics=3, words_per_topic=10, docs_per_topic=8, triples_per_doc=100,
                       generator=generator, device=device)
config = JoSEConfig(num_words=30, num_docs=24)
topic = torch.arange(24, device=device) // 8
same_topic = topic[:, None] == topic[None, :]

print(f"\n{'rule':<11}{'loss@0':>8}{'loss@30':>9}{'loss@150':>10}{'max|norm-1|':>13}{'cos(d) same/other topic':>25}")
curves = {}
for rule in STEP_RULES:
    model = SphericalEmbedding(config, generator=make_generator(1), device=device)
    curves[rule] = train_jose(model, triples, steps=150, lr=0.1, rule=rule, generator=make_generator(2))
    with torch.no_grad():
        drift = max(float((p.norm(dim=-1) - 1).abs().max()) for p in model.parameters())
        cos = model.doc @ model.doc.T
    print(f"{rule:<11}{curves[rule][0]:>8.3f}{curves[rule][30]:>9.3f}{curves[rule][-1]:>10.3f}{drift:>13.0e}"
          f"{float(cos[same_topic].mean()):>16.2f} / {float(cos[~same_topic].mean()):.2f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
for rule, curve in curves.items():
    ax.plot(curve, label=rule)
ax.set_xlabel("full-batch step")
ax.set_ylabel("mean hinge loss")
ax.set_yscale("log")
ax.set_title("JoSE loss on the unit sphere, lr = 0.1")
ax.legend()
fig.tight_layout()
