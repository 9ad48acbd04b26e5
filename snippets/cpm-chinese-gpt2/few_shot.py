"""Few-shot prompting of a tiny GPT-2 trained here: the examples in the prompt choose the task."""
import matplotlib.pyplot as plt
import torch

from spaces_code.cpm_lm import GPT2Config, GPT2LM, count_parameters
from spaces_code.decoding import sample_decode
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0, device)

# two tasks over the same inputs: a digit to its ordinary (小写) or financial (大写) Chinese numeral
DIGITS, LOWER, UPPER = "0123456789", "〇一二三四五六七八九", "零壹贰叁肆伍陆柒捌玖"
vocab = list(DIGITS + LOWER + UPPER + "→；")
index = {c: i for i, c in enumerate(vocab)}
targets = torch.tensor([[index[c] for c in LOWER], [index[c] for c in UPPER]], device=device)


def batch(size, pairs=4):
    """Sequences “d→X；d→X；…”, one task per sequence, drawn at random."""
    task = torch.randint(0, 2, (size, 1), generator=generator, device=device)
    digits = torch.randint(0, 10, (size, pairs), generator=generator, device=device)
    seq = torch.stack([digits, torch.full_like(digits, index["→"]), targets[task, digits],
                       torch.full_like(digits, index["；"])], dim=-1)
    return seq.flatten(1)  # (size, 4 * pairs)


config = GPT2Config(vocab_size=len(vocab), n_positions=16, n_layer=2, n_embd=48, n_head=4)
model = GPT2LM(config).to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
losses = []
for step in range(300):
    seq = batch(64)
    logits = model(seq[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), seq[:, 1:].flatten())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
model.eval()
print(f"tiny GPT-2: {count_parameters(config):,} parameters, final training loss {losses[-1]:.3f}")


def encode(text):
    return torch.tensor([[index[c] for c in text]], device=device)


print("\nnext-token probabilities after each prompt")
print(f"{'prompt':<16}{'p(四)':>8}{'p(肆)':>8}")
with torch.no_grad():
    for prompt in ("4→", "7→柒；4→", "2→贰；9→玖；4→", "2→二；9→九；4→"):
        p = model.next_logits(encode(prompt)).softmax(-1)[0]
        print(f"{prompt:<16}{p[index['四']]:>8.3f}{p[index['肆']]:>8.3f}")

    # the sampling loop of the article: nucleus sampling continues the pattern, new digits included
    prompt = encode("2→贰；9→玖；").repeat(3, 1)
    tokens, _ = sample_decode(model.next_logits, prompt, 8, top_k=10, top_p=0.9, generator=generator)
    print("\nsampled continuations (top-k=10, top-p=0.9):")
    for row in tokens:
        print("  " + "".join(vocab[i] for i in row[:6]) + " | " + "".join(vocab[i] for i in row[6:]))

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(losses)
ax.set(xlabel="step", ylabel="cross-entropy", title="Training the tiny GPT-2 (2 layers, d=48)")
