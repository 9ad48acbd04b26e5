"""Integrated gradients on a tiny sentiment model that reads negation: which tokens drive the prediction."""
import matplotlib.pyplot as plt
import torch

from spaces_code.integrated_gradients import (NEGATOR, VOCAB, effective_polarity, make_sentiment_data,
                                              negation_task, token_importance)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same data and weights on every device
model, polarity = negation_task(generator, device=device)
tokens, labels = make_sentiment_data(1000, polarity, 8, generator, negator=NEGATOR)
negated = (effective_polarity(tokens, polarity, NEGATOR) != polarity[tokens]).any(-1)
with torch.no_grad():
    correct = ((model(tokens) > 0).float() == labels)
print(f"test accuracy {correct.float().mean():.3f}; on the {int(negated.sum())} sentences with "
      f"'not' before a sentiment word {correct[negated].float().mean():.3f}")

# the same word in two contexts: mean IG of "good"/"bad" alone, and of the window "not good"/"not bad"
credit = {(w, n): [] for w in ("good", "bad") for n in (False, True)}
for sentence in tokens[:300]:
    importance = token_importance(model, sentence).cpu()
    for t, token in enumerate(sentence.tolist()):
        if VOCAB[token] in ("good", "bad"):
            after_not = t > 0 and sentence[t - 1].item() == NEGATOR
            credit[VOCAB[token], after_not].append((importance[t - 1] + importance[t]).item() if after_not
                                                   else importance[t].item())
for word in ("good", "bad"):
    alone, flipped = credit[word, False], credit[word, True]
    print(f"mean IG of '{word}' alone {sum(alone) / len(alone):+.2f} ({len(alone)} times), "
          f"of 'not {word}' {sum(flipped) / len(flipped):+.2f} ({len(flipped)} times)")

n_not = (tokens == NEGATOR).sum(-1)
picks = ([i for i in range(len(tokens)) if negated[i] and n_not[i] == 1][:3]
         + [i for i in range(len(tokens)) if n_not[i] == 0][:3])  # one "not" before a sentiment word / none
fig, ax = plt.subplots(figsize=(8, 2.8))
for row, i in enumerate(picks):
    sentence = tokens[i]
    with torch.no_grad():
        logit = model(sentence[None]).item()
    sign = 1.0 if logit > 0 else -1.0  # red: pushes toward the predicted class; blue: against it
    importance = sign * token_importance(model, sentence).cpu()
    strength = (importance / importance.abs().max()).tolist()
    words = [VOCAB[t] for t in sentence.tolist()]
    print(f"{'pos' if logit > 0 else 'neg'} {logit:+6.2f} | "
          + " ".join(f"{w}({v:+.1f})" for w, v in zip(words, importance.tolist())))
    x = 0.0
    for word, s in zip(words, strength):
        ax.text(x, -row, word, family="monospace", fontsize=9, va="center",
                color="white" if abs(s) > 0.6 else "black",
                bbox=dict(boxstyle="square,pad=0.15", fc=plt.cm.RdBu_r(0.5 + 0.45 * s), ec="none"))
        x += len(word) + 1.5  # with x in [-1, 80] one unit is about one monospace character
    ax.text(x + 1, -row, f"-> {'positive' if logit > 0 else 'negative'}", fontsize=9, va="center")
ax.set_xlim(-1, 80)
ax.set_ylim(-len(picks) + 0.4, 0.6)
ax.axis("off")
ax.set_title("integrated gradients per token (red: toward the prediction, blue: against it)", fontsize=10)
fig.tight_layout()
