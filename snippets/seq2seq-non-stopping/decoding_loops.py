"""Greedy, beam, top-k and nucleus decoding of a toy bigram model that loops under greedy search."""
import matplotlib.pyplot as plt
import torch

from spaces_code.decoding import (beam_search, bigram_lm, continue_logits, decoding_transition_matrix,
                                  greedy_decode, looping_toy_model, non_termination_probability,
                                  sample_decode, self_terminating)
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same draws whichever device runs the model
vocab, log_probs = looping_toy_model(device)
BOS, EOS = 0, 1
model = bigram_lm(log_probs)


def next_logits(tokens):
    return model(tokens)[:, -1]


def text(tokens):
    words = [vocab[i] for i in tokens.tolist()[1:]]
    return "".join(words[:words.index("<eos>") + 1] if "<eos>" in words else words + ["…"])


prompt = torch.full((1, 1), BOS, device=device)
tokens, _ = greedy_decode(next_logits, prompt, 12, eos=EOS)
print(f"{'greedy':<22}{text(tokens[0])}")
for beam_size in (1, 5):  # one beam is greedy search: eos ends a hypothesis only from within the top k
    tokens, score, _ = beam_search(next_logits, prompt[0], 12, EOS, beam_size)
    print(f"{f'beam, size {beam_size}':<22}{text(tokens)}   log p = {score:.3f}")

rules = {  # name: (top_k, top_p, consistent, line style of the figure)
    "ancestral": (None, None, False, "-"),
    "top-k, k=2": (2, None, False, "-"),
    "consistent top-k": (2, None, True, "-"),
    "nucleus, p=0.75": (None, 0.75, False, "--"),
    "consistent nucleus": (None, 0.75, True, "--"),
}
for name, (top_k, top_p, consistent, _) in rules.items():
    tokens, _ = sample_decode(next_logits, prompt.repeat(2, 1), 10, eos=EOS, top_k=top_k, top_p=top_p,
                              consistent=consistent, generator=generator)
    print(f"{name:<22}" + " | ".join(text(row) for row in tokens))

print("\nexact P(no <eos> within T steps)")
print(f"{'':<22}{'T=10':>10}{'T=50':>10}{'T=200':>10}")
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, (top_k, top_p, consistent, style) in rules.items():
    q = decoding_transition_matrix(log_probs, top_k, top_p, EOS, consistent)
    p = non_termination_probability(q, BOS, EOS, 200).cpu()
    print(f"{name:<22}" + "".join(f"{p[t]:>10.2e}" for t in (10, 50, 200)))
    ax.semilogy(p.clamp_min(1e-12), style, label=name)
ax.set(xlabel="T (decoding steps)", ylabel="P(no eos within T)", ylim=(1e-12, 2),
       title="Candidate sets without <eos> never stop")
ax.legend(fontsize=8)
fig.tight_layout()

print()
model_st = bigram_lm(continue_logits(log_probs, EOS))
for epsilon in (0.01, 0.1):
    tokens, _ = greedy_decode(self_terminating(model_st, EOS, epsilon), prompt, 30, eos=EOS)
    print(f"{f'self-terminating, eps={epsilon}':<32}greedy: {text(tokens[0])}")
