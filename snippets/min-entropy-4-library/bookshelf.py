"""Put the archive's frequent words on one shelf so that words used together stand together."""
import re
from collections import Counter

import matplotlib.pyplot as plt

from spaces_code.corpus import chinese_words, read_texts
from spaces_code.linear_arrangement import (arrangement_cost, cooccurrence_matrix, improve_by_swaps,
                                            positions_from_order, random_arrangement_costs,
                                            spectral_order)
from spaces_code.runtime import make_generator, pick_device

WINDOW = 8  # two words co-occur when at most 8 tokens apart in one paragraph

device = pick_device()
generator = make_generator(0)  # a CPU generator: random shelves are drawn on CPU, then moved

# one "borrowing" = one paragraph of the archive: words in it are used together
articles = [[chinese_words(par) for par in re.split(r"\n\s*\n", text)] for text in read_texts()]
paragraphs = [par for article in articles for par in article]
counts = Counter(word for par in paragraphs for word in par if len(word) >= 2)
# words found in at most 6 of the 40 excerpts: topic words, not "我们", "一个", "就是"
articles_with = Counter(word for article in articles for word in {w for par in article for w in par})
vocab = [word for word, _ in counts.most_common() if articles_with[word] <= 6][:60]
cooc = cooccurrence_matrix(paragraphs, vocab, window=WINDOW, device=device)
keep = cooc.sum(dim=1) > 0
vocab = [word for word, k in zip(vocab, keep.tolist()) if k]
cooc = cooc[keep][:, keep]

random_costs = random_arrangement_costs(cooc, 2000, generator)
spectral = spectral_order(cooc)
improved = improve_by_swaps(cooc, spectral)
spectral_cost = arrangement_cost(cooc, positions_from_order(spectral)).item()
improved_cost = arrangement_cost(cooc, positions_from_order(improved)).item()
print(f"{len(vocab)} words, {int(cooc.sum().item()) // 2} co-occurrences within {WINDOW} tokens")
print(f"random shelf:            mean {random_costs.mean().item():8.0f}  "
      f"best of 2000 {random_costs.min().item():8.0f}")
print(f"spectral order:               {spectral_cost:8.0f}")
print(f"spectral + swaps:             {improved_cost:8.0f}  "
      f"({improved_cost / random_costs.mean().item():.0%} of the random mean)")
shelf = [vocab[i] for i in improved.tolist()]
for start in range(0, len(shelf), 15):
    print(" ".join(shelf[start:start + 15]))

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(random_costs.cpu().numpy(), bins=40, color="lightgray", label="random shelves")
ax.axvline(spectral_cost, color="tab:blue", label="spectral order")
ax.axvline(improved_cost, color="tab:red", label="spectral + swaps")
ax.set_xlabel(r"cost $\sum_{i<j} C_{ij}|x_i - x_j|$")
ax.set_ylabel("count")
ax.legend(fontsize=8)
fig.tight_layout()
