"""Integrated gradients on a tiny sentiment model: which tokens drive the prediction (redder = more)."""
import matplotlib.pyplot as plt
import torch

from spaces_code.integrated_gradients import (SentimentConfig, make_sentiment_data, token_importance,
                                              train_sentiment_model)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0, device)
positive = ["good", "great", "love", "excellent"]
negative = ["bad", "boring", "awful", "hate"]
neutral = ["the", "movie", "film", "was", "a", "and", "plot", "actors",
           "really", "story", "but", "it", "is", "very", "this", "ending"]
vocab = positive + negative + neutral
polarity = torch.tensor([1.0] * 4 + [-1.0] * 4 + [0.0] * 16, device=device)
config = SentimentConfig(vocab_size=len(vocab))

tokens, labels = make_sentiment_data(512, polarity, config.length, generator)
model = train_sentiment_model(tokens, labels, config, generator=generator)
test_tokens, test_labels = make_sentiment_data(256, polarity, config.length, generator)
with torch.no_grad():
    accuracy = ((model(test_tokens) > 0).float() == test_labels).float().mean().item()
print(f"synthetic sentiment task: {len(vocab)} tokens, test accuracy {accuracy:.3f}")

sentences = test_tokens[:5]
fig, ax = plt.subplots(figsize=(8, 2.6))
for row, sentence in enumerate(sentences):
    with torch.no_grad():
        logit = model(sentence[None]).item()
    sign = 1.0 if logit > 0 else -1.0  # attribute toward the predicted class
    importance = sign * token_importance(model, sentence)
    strength = (importance / importance.abs().max()).clamp(min=0).tolist()
    words = [vocab[t] for t in sentence.tolist()]
    print(f"{'pos' if logit > 0 else 'neg'} {logit:+6.2f} | "
          + " ".join(f"{w}({v:+.1f})" for w, v in zip(words, importance.tolist())))
    x = 0.0
    for word, s in zip(words, strength):
        ax.text(x, -row, word, family="monospace", fontsize=9, va="center", color="white" if s > 0.6 else "black",
                bbox=dict(boxstyle="square,pad=0.15", fc=plt.cm.Reds(0.9 * s), ec="none"))
        x += len(word) + 1.5  # with x in [-1, 100] one unit is about one monospace character
    ax.text(x + 1, -row, f"-> {'positive' if logit > 0 else 'negative'}", fontsize=9, va="center")
ax.set_xlim(-1, 100)
ax.set_ylim(-len(sentences) + 0.4, 0.6)
ax.axis("off")
ax.set_title("integrated gradients per token (redder = more important for the prediction)", fontsize=10)
fig.tight_layout()
