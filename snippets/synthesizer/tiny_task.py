"""Dot-product attention, Dense and Random Synthesizer on one tiny causal task: y_i = x_{i-2}."""
import matplotlib.pyplot as plt
import torch

from spaces_code.attention_masks import causal_mask
from spaces_code.synthesizer import (DenseSynthesizer, DotProductAttention, RandomSynthesizer, TinyTagger,
                                     mix)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
torch.set_num_threads(1)  # a tiny model: one CPU thread avoids thread contention on a small machine
generator = make_generator(0)  # a CPU generator: the same draws whichever device trains
vocab, n, d, delay = 16, 12, 32, 2
mask = causal_mask(n, device=device)


def batch(size):
    x = torch.randint(0, vocab, (size, n), generator=generator).to(device)
    return x, x.roll(delay, dims=1)  # target at i is x_{i-2}; the first two positions are not scored


mixers = {
    "dot-product": DotProductAttention(d, generator=generator),
    "Dense Synthesizer": DenseSynthesizer(d, max_len=n, generator=generator),
    "Random Synthesizer": RandomSynthesizer(d, max_len=n, generator=generator),
}
curves = {}
print(f"{'mixer':<20}{'parameters':>11}{'accuracy':>10}")
for name, mixer in mixers.items():
    model = TinyTagger(vocab, n, d, mixer, generator=generator).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    curves[name] = []
    for step in range(100):  # 100 steps: dot-product and Dense are already exact, Random still catching up
        x, y = batch(32)
        logits = model(x, mask)[:, delay:]
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y[:, delay:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        curves[name].append(loss.item())
    with torch.no_grad():
        x, y = batch(1000)
        accuracy = (model(x, mask)[:, delay:].argmax(-1) == y[:, delay:]).float().mean().item()
    print(f"{name:<20}{sum(p.numel() for p in mixer.parameters()):>11,}{accuracy:>10.3f}")

fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
for name, curve in curves.items():
    axes[0].plot(curve, label=name)
axes[0].set(xlabel="step", ylabel="cross-entropy", yscale="log", title="training loss")
axes[0].legend(fontsize=8)
random_synth = mixers["Random Synthesizer"]
with torch.no_grad():  # the learned, input-independent attention matrix softmax(R) under the mask
    r = random_synth.logits(torch.zeros(1, n, d, device=device))  # (1, heads, n, n), whatever the input
    weights = mix(r, torch.eye(n, device=device), mask)[0, 0]  # softmax(R) @ I
axes[1].imshow(weights.cpu(), cmap="Blues")
axes[1].set(title="Random Synthesizer: softmax(R)", xlabel="key j", ylabel="query i")
fig.tight_layout()
