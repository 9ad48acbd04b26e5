"""GlobalPointer on a toy nested-NER task: MCCE loss, training, and threshold decoding (s > 0)."""
import matplotlib.pyplot as plt
import torch

from spaces_code.globalpointer import (TOY_TYPES, ToyTagger, decode_entities, fit_toy_tagger,
                                       make_toy_nested_ner, multilabel_categorical_crossentropy, toy_batch)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
torch.set_num_threads(1)  # a tiny model: one CPU thread avoids thread contention on a small machine
generator = make_generator(0)  # CPU generator: the same model and data whichever device trains

# the loss on one row: 2 target classes out of 5, scores of any size
y_true = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0]], device=device)
for scores in ([3.0, -2.0, 1.0, -4.0, 0.5], [1e4, -1e4, 1e4, -1e4, -1e4], [-1e4, 1e4, 1e4, -1e4, -1e4]):
    y_pred = torch.tensor([scores], device=device)
    loss = multilabel_categorical_crossentropy(y_true, y_pred).item()
    print(f"MCCE(y = [1,0,1,0,0], s = {scores}) = {loss:.4f}")

model = ToyTagger(generator=generator).to(device)
losses = fit_toy_tagger(model, steps=80, generator=generator)
print(f"\ntraining loss: step 1 {losses[0]:.3f}, step 20 {losses[19]:.3f}, step 80 {losses[-1]:.4f}")

texts, gold = make_toy_nested_ner(200, generator=generator)  # fresh sentences, never trained on
ids, mask, _ = toy_batch(texts, device=device)
with torch.no_grad():
    scores = model(ids, mask)
exact = sum(decode_entities(scores[i]) == gold[i] for i in range(len(texts)))
print(f"held-out sentences decoded exactly: {exact}/{len(texts)}\n")

examples = ["我在北京大学学习", "今天去上海银行和深圳", "大家在南京医院看病"]
ids, mask, _ = toy_batch(examples, device=device)
with torch.no_grad():
    scores = model(ids, mask)
for row, text in enumerate(examples):
    entities = decode_entities(scores[row])  # padded positions score -inf-like, never decoded
    print(f"{text} -> " + ", ".join(f"{TOY_TYPES[t]}:{text[s:e + 1]}" for t, s, e in entities))

n = len(examples[0])
fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
for ax, type_index in zip(axes, range(len(TOY_TYPES))):
    span_scores = scores[0, type_index, :n, :n].cpu()
    span_scores[span_scores == torch.finfo(span_scores.dtype).min] = float("nan")  # end < start: blank
    image = ax.imshow(span_scores.clamp(min=-30), cmap="RdBu_r", vmin=-30, vmax=30)
    for _, s, e in decode_entities(span_scores[None]):
        ax.add_patch(plt.Rectangle((e - 0.5, s - 0.5), 1, 1, fill=False, ec="k", lw=2))
    ax.set_title(f"type {TOY_TYPES[type_index]}: s(start, end)", fontsize=10)
    ax.set_xlabel("end")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
axes[0].set_ylabel("start")
fig.colorbar(image, ax=axes, shrink=0.8)
fig.suptitle("span scores for sentence 1 (boxes: s > 0)", fontsize=10)
