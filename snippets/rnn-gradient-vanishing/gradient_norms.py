"""||ds_T/ds_{T-k}|| against k for a tanh RNN at several weight scales and for an LSTM."""
import matplotlib.pyplot as plt
import torch

from spaces_code.rnn_gradients import LSTMCell, TanhRNNCell, state_gradient_norms
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same numbers on every device
hidden, steps, input_size = 32, 60, 8
inputs = torch.randn(steps, input_size, generator=generator, dtype=torch.float64).to(device)

cells = {f"tanh RNN, scale {s}": TanhRNNCell(input_size, hidden, s, generator, device) for s in (0.5, 1.0, 2.0, 4.0)}
cells["LSTM, forget bias 0"] = LSTMCell(input_size, hidden, 0.0, generator=generator, device=device)
cells["LSTM, forget bias 3"] = LSTMCell(input_size, hidden, 3.0, generator=generator, device=device)

print(f"{'cell':<22} {'|W|_2':>6} " + " ".join(f"{f'k={k}':>9}" for k in (1, 10, 30, 60)))
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, cell in cells.items():
    state0 = torch.zeros(cell.state_size, device=device, dtype=torch.float64)
    norms = state_gradient_norms(cell, state0, inputs).cpu()
    w_norm = f"{torch.linalg.matrix_norm(cell.w.detach(), ord=2).item():6.2f}" if "tanh" in name else "     -"
    print(f"{name:<22} {w_norm} " + " ".join(f"{norms[k].item():9.2e}" for k in (1, 10, 30, 60)))
    ax.semilogy(norms, ls="--" if "LSTM" in name else "-", label=name)
ax.set_xlabel("k (steps back)")
ax.set_ylabel(r"$\|\partial s_T / \partial s_{T-k}\|_2$")
ax.set_title("gradient through time: vanishing, exploding, LSTM")
ax.legend(fontsize=7, ncol=2)
fig.tight_layout()
