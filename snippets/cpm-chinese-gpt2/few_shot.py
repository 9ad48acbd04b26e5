"""Few-shot prompting of a tiny GPT-2 trained here: the examples in the prompt choose the task."""
import torch

from spaces_code.cpm_lm import GPT2Config, GPT2LM, count_parameters
from spaces_code.decoding import sample_decode
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
torch.set_num_threads(1)  # a tiny model: one CPU thread avoids thread contention on a small machine
# seed 1: with seed 0 this tiny run does not pick up the few-shot skill within 400 steps (see the page)
generator = make_generator(1)  # CPU generator: the same draws whichever device trains

# two tasks on the same inputs: a digit to its ordinary (小写) or its financial (大写) numeral
DIGITS, LOWER, UPPER = "0123456789", "〇一二三四五六七八九", "零壹贰叁肆伍陆柒捌玖"
vocab = list(DIGITS + LOWER + UPPER + "；")
index = {c: i for i, c in enumerate(vocab)}
numerals = torch.tensor([[index[c] for c in LOWER], [index[c] for c in UPPER]], device=device)


def batch(size, pairs=4):
    """Training text “4四；7七；…” or “4肆；7柒；…”: one task per sequence, drawn at random."""
    task = torch.randint(0, 2, (size, 1), generator=generator).to(device)
    digits = torch.randint(0, 10, (size, pairs), generator=generator).to(device)
    seq = torch.stack([digits, numerals[task, digits], torch.full_like(digits, index["；"])], dim=-1)
    return seq.flatten(1)  # (size, 3 * pairs)


config = GPT2Config(vocab_size=len(vocab), n_positions=12, n_layer=1, n_embd=32, n_head=4)
model = GPT2LM(config, generator=generator).to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
for step in range(250):
    seq = batch(32)
    loss = torch.nn.functional.cross_entropy(model(seq[:, :-1]).flatten(0, 1), seq[:, 1:].flatten())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
model.eval()
print(f"tiny GPT-2: {count_parameters(config):,} parameters, 250 training steps, last loss {loss.item():.3f}")


def encode(*texts):
    return torch.tensor([[index[c] for c in text] for text in texts], device=device)


print("\nprobability of the next token")
print(f"{'prompt':<14}{'p(四)':>8}{'p(肆)':>8}")
with torch.no_grad():
    for prompt in ("4", "7柒；4", "2贰；9玖；4", "2二；9九；4"):
        p = model.next_logits(encode(prompt)).softmax(-1)[0]
        print(f"{prompt:<14}{p[index['四']]:>8.3f}{p[index['肆']]:>8.3f}")

    # the sampling loop: top-k + nucleus sampling continues whichever pattern the prompt shows
    prompts = encode("2贰；9玖；", "2二；9九；")
    tokens, _ = sample_decode(model.next_logits, prompts.repeat_interleave(2, 0), 6, top_k=10, top_p=0.9,
                              generator=generator)
    print("\nsampled continuations (top-k=10, top-p=0.9):")
    for row in tokens.tolist():
        print("  " + "".join(vocab[i] for i in row[:6]) + " ▸ " + "".join(vocab[i] for i in row[6:]))
