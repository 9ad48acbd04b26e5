"""Associative recall: which mixer finds the value stored with the query key?"""
import matplotlib.pyplot as plt
import torch

from spaces_code.runtime import make_generator, pick_device
from spaces_code.synthesizer import DenseSynthesizer, DotProductAttention, MixtureSynthesizer, RandomSynthesizer
from spaces_code.synthesizer_recall import (RecallReader, RecallTask, position_vote_accuracy, recall_accuracy,
                                            recall_batch, recall_mask, train_recall)

device = pick_device()
torch.set_num_threads(1)  # a tiny model: one CPU thread avoids thread contention on a small machine
generator = make_generator(0)  # a CPU generator: the same draws whichever device trains
# 150 steps: accuracies within 0.01 of a 300-step run (dot-product and the mixture ~1.0, Dense at its
# position prior, Random at the vote); each step is a fixed cost, so this halves the run time.
task, d, steps = RecallTask(n_pairs=6, n_keys=16, n_values=16), 32, 150
mixers = {
    "dot-product": lambda: DotProductAttention(d, generator=generator),
    "Dense Synthesizer": lambda: DenseSynthesizer(d, task.length, generator=generator),
    "Random Synthesizer": lambda: RandomSynthesizer(d, task.length, generator=generator),
    "Random + dot-product": lambda: MixtureSynthesizer(d, task.length, generator=generator),
}
print(f"{task.n_pairs} sorted (key, value) pairs, then a query key; {steps} steps of AdamW, d = {d}")
print(f"chance 1/{task.n_values}                                = {1 / task.n_values:.3f}")
print(f"best position-only reader, query unseen (Random) = {position_vote_accuracy(task, False):.3f}")
print(f"best position-only reader, query seen (Dense)    = {position_vote_accuracy(task, True):.3f}\n")
print(f"{'mixer':<22}{'accuracy':>9}")
keys, values, target = recall_batch(task, 12, generator, device)  # examples for the heat maps
weights = {}
for name, make in mixers.items():
    model = RecallReader(task, d, make(), generator=generator).to(device)
    train_recall(model, steps, generator)
    print(f"{name:<22}{recall_accuracy(model, 2000, generator):>9.3f}")
    with torch.no_grad():  # the query row of softmax(B): where the last position looks
        h = model.embed(keys, values)
        weights[name] = model.mixer.attention_weights(h, recall_mask(task, device))[:, 0, -1, :task.n_pairs]
if isinstance(model.mixer, MixtureSynthesizer):
    alpha = model.mixer.mixture.softmax(0).tolist()
    print(f"\nlearned mixture weights: alpha_Random = {alpha[0]:.2f}, alpha_dot = {alpha[1]:.2f}")

answer = (keys[:, :task.n_pairs] == keys[:, -1:]).float().argmax(1).cpu()  # the position holding the key
fig, axes = plt.subplots(1, 4, figsize=(11, 3.6), sharey=True)
for ax, (name, w) in zip(axes, weights.items()):
    ax.imshow(w.cpu(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.scatter(answer, range(len(answer)), marker="o", facecolors="none", edgecolors="r", s=40)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("position j of the pair")
    ax.set_xticks(range(task.n_pairs))
axes[0].set_ylabel("example sequence")
fig.suptitle("weight of the query on each pair (red circle: the pair holding the query key)", fontsize=10)
fig.tight_layout()
