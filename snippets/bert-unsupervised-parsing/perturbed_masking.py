"""Perturbed masking on two stand-ins for BERT: a planted-structure MLM and a bigram MLM of this archive."""
import matplotlib.pyplot as plt
import torch

from spaces_code.corpus import CJK_RUN, read_texts, tokenize
from spaces_code.perturbed_masking import (BigramMLM, PlantedMLM, adjacent_cohesion, impact_matrix,
                                           parse_tree, segment)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: draw on CPU, then move to the device


def brackets(tree, chars):
    if isinstance(tree, int):
        return chars[tree]
    return "[" + " ".join(brackets(t, chars) for t in tree) + "]"


# 1) planted structure: words 北京|大学生|前来|应聘, phrases [北京 大学生] [前来 应聘]
sentence = "北京大学生前来应聘"
word_ids = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3], device=device)
phrase_ids = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1], device=device)
vocab = sorted(set(sentence)) + ["[MASK]"]
tokens = torch.tensor([vocab.index(c) for c in sentence], device=device)
planted = PlantedMLM(word_ids, phrase_ids, len(vocab), generator=generator)
f_planted = impact_matrix(planted, tokens, mask_id=len(vocab) - 1)
cohesion = adjacent_cohesion(f_planted)
print("planted MLM, adjacent cohesion:", " ".join(f"{c:.2f}" for c in cohesion.tolist()))
words = segment(f_planted, threshold=0.5 * cohesion.max().item())
print("  words:", " | ".join(sentence[a:b] for a, b in words))
print("  tree: ", brackets(parse_tree(f_planted), sentence))

# 2) a character bigram model counted from the Chinese text of this archive's 40 excerpts
runs = [run for text in read_texts() for run in CJK_RUN.findall(text)]
chars = ["<s>"] + sorted(set("".join(runs))) + ["[MASK]"]
index = {c: i for i, c in enumerate(chars)}
counts = BigramMLM.count([torch.tensor([index[c] for c in r]) for r in runs], len(chars))
bigram = BigramMLM(counts.to(device), mask_id=len(chars) - 1, smoothing=0.01)
print(f"\nbigram MLM from the archive: {sum(map(len, runs))} characters, {len(chars) - 2} distinct")
examples = ["深度学习这个箱子远比我们想象的要黑", "尽管深度学习已经在越来越多的领域证明了其有效性",
            "我们知道自注意力机制算是解释性比较强的模型之一"]
for s in examples:
    f = impact_matrix(bigram, torch.tensor([index[c] for c in s], device=device), mask_id=len(chars) - 1)
    # no labelled data to tune a threshold: cut the weaker half of the adjacent links
    words = segment(f, threshold=adjacent_cohesion(f).median().item())
    print("  perturbed masking: " + " | ".join(s[a:b] for a, b in words))
    print("  jieba (reference): " + " | ".join(tokenize(s)))

# agreement of the cuts with jieba's on 40 archive sentences, against as many random cuts
sample = [r for r in runs if 8 <= len(r) <= 16][::8][:40]
shuffler = torch.Generator().manual_seed(0)
hits, random_hits, n_cuts = 0, 0, 0
for s in sample:
    f_s = impact_matrix(bigram, torch.tensor([index[c] for c in s], device=device), mask_id=len(chars) - 1)
    ours = {start for start, _ in segment(f_s, adjacent_cohesion(f_s).median().item())[1:]}
    reference = set(torch.tensor([len(w) for w in tokenize(s)]).cumsum(0)[:-1].tolist())
    guess = set((torch.randperm(len(s) - 1, generator=shuffler)[:len(ours)] + 1).tolist())
    hits += len(ours & reference)
    random_hits += len(guess & reference)
    n_cuts += len(ours)
print(f"  share of cuts that jieba also makes ({len(sample)} sentences): {hits / n_cuts:.2f}, "
      f"random cuts: {random_hits / n_cuts:.2f}")

fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.5))
for ax, f, title in ((axes[0], f_planted, "planted MLM"), (axes[1], f, "bigram MLM, 3rd example")):
    im = ax.imshow(f.cpu(), cmap="Reds")
    ax.set(title=title, xlabel="masked token j", ylabel="probed token i")
    fig.colorbar(im, ax=ax, shrink=0.8)
fig.suptitle(r"impact $f(x_i, x_j)$")
fig.tight_layout()
