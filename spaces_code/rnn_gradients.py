r"""也来谈谈RNN的梯度消失/爆炸问题 — https://kexue.fm/archives/7888

Background: Bengio, Simard & Frasconi, "Learning long-term dependencies with gradient descent is
difficult" (1994); Hochreiter & Schmidhuber, "Long Short-Term Memory" (1997); Pascanu, Mikolov & Bengio,
"On the difficulty of training recurrent neural networks" (ICML 2013).

A simple RNN $h_t = \tanh(W h_{t-1} + U x_t + b)$ has the step Jacobian
$\frac{\partial h_t}{\partial h_{t-1}} = \mathrm{diag}(1 - h_t^2)\,W$, and by the chain rule

$$\frac{\partial h_t}{\partial h_{t-k}} = \prod_{s=t-k+1}^{t}\frac{\partial h_s}{\partial h_{s-1}},\qquad
\Big\Vert\frac{\partial h_t}{\partial h_{t-k}}\Big\Vert_2 \le \Vert W\Vert_2^{\,k}$$

since $|\tanh'| \le 1$: the gradient vanishes geometrically when $\Vert W\Vert_2 < 1$, and can explode
when $W$ is large and the units are not saturated. The LSTM's cell state
$c_t = f_t\odot c_{t-1} + i_t\odot g_t$ gives $\frac{\partial c_t}{\partial c_{t-1}} = \mathrm{diag}(f_t) + \cdots$,
a path whose size the forget gate $f_t$ controls, so the gradient can survive many steps.

The state here is $h_t$ for the tanh RNN and $(h_t, c_t)$ for the LSTM; Jacobians are taken with respect
to the whole state, one sequence at a time. Cells accept leading batch dimensions (..., state).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from spaces_code.randomness import randn


class TanhRNNCell(nn.Module):
    r"""$h_t = \tanh(W h_{t-1} + U x_t + b)$ with $W = \text{scale}\cdot G/\sqrt{d}$, $G_{ij}\sim\mathcal{N}(0,1)$."""

    def __init__(self, input_size: int, hidden: int, weight_scale: float = 1.0,
                 generator: torch.Generator | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        kw = dict(generator=generator, device=device, dtype=dtype)  # drawn on the generator's device, moved
        # scale/sqrt(d) puts the spectral radius of W near `weight_scale` (circular law)
        self.w = nn.Parameter(weight_scale * randn(hidden, hidden, **kw) / hidden ** 0.5)
        self.u = nn.Parameter(randn(hidden, input_size, **kw) / input_size ** 0.5)
        self.b = nn.Parameter(torch.zeros(hidden, device=device, dtype=dtype))
        self.state_size = hidden

    def forward(self, state: Tensor, x: Tensor) -> Tensor:
        # $h_t = \tanh(W h_{t-1} + U x_t + b)$
        return torch.tanh(state @ self.w.T + x @ self.u.T + self.b)  # (..., hidden)


class LSTMCell(nn.Module):
    r"""LSTM on the stacked state $s = (h, c)$: $c_t = f_t\odot c_{t-1} + i_t\odot g_t$, $h_t = o_t\odot\tanh c_t$.

    ``forget_bias`` is added to the forget gate's pre-activation (a positive value keeps $f_t$ near 1).
    """

    def __init__(self, input_size: int, hidden: int, forget_bias: float = 1.0, weight_scale: float = 1.0,
                 generator: torch.Generator | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        kw = dict(generator=generator, device=device, dtype=dtype)
        self.w = nn.Parameter(weight_scale * randn(4 * hidden, hidden, **kw) / hidden ** 0.5)
        self.u = nn.Parameter(randn(4 * hidden, input_size, **kw) / input_size ** 0.5)
        bias = torch.zeros(4 * hidden, device=device, dtype=dtype)
        bias[hidden:2 * hidden] = forget_bias
        self.b = nn.Parameter(bias)
        self.hidden = hidden
        self.state_size = 2 * hidden

    def forward(self, state: Tensor, x: Tensor) -> Tensor:
        h, c = state[..., : self.hidden], state[..., self.hidden:]  # (..., hidden) each
        i, f, g, o = (h @ self.w.T + x @ self.u.T + self.b).chunk(4, dim=-1)
        # $c_t = \sigma(f)\odot c_{t-1} + \sigma(i)\odot\tanh(g)$
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        # $h_t = \sigma(o)\odot\tanh(c_t)$
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        return torch.cat([h_new, c_new], dim=-1)  # (..., 2 hidden)


def run(cell: nn.Module, state0: Tensor, inputs: Tensor) -> Tensor:
    """States $s_1..s_T$ (T, state) from $s_0$ (state,) and inputs (T, input_size)."""
    states, state = [], state0
    for x in inputs:
        state = cell(state, x)
        states.append(state)
    return torch.stack(states)


def step_jacobians(cell: nn.Module, state0: Tensor, inputs: Tensor) -> Tensor:
    r"""$J_t = \partial s_t/\partial s_{t-1}$ along the trajectory, shape (T, state, state)."""
    with torch.no_grad():
        states = torch.cat([state0[None], run(cell, state0, inputs)])  # (T+1, d)
    d = states.shape[-1]
    # d copies of s_{t-1} for every t: row i of copy i gives row i of J_t in one backward pass
    copies = states[:-1, None, :].expand(-1, d, d).clone().requires_grad_(True)  # (T, d, d)
    outputs = cell(copies, inputs[:, None, :].expand(-1, d, -1))  # (T, d, d)
    picked = outputs.diagonal(dim1=-2, dim2=-1).sum()  # $\sum_{t,i} s_{t,i}$(copy i)
    return torch.autograd.grad(picked, copies)[0]  # (T, d, d): [t, i, j] = $\partial s_{t,i}/\partial s_{t-1,j}$


def gradient_norms(jacobians: Tensor) -> Tensor:
    r"""$\Vert\partial s_T/\partial s_{T-k}\Vert_2$ for $k = 0..T$ (T+1,), from step Jacobians (T, d, d).

    $\partial s_T/\partial s_{T-k} = J_T J_{T-1}\cdots J_{T-k+1}$, accumulated from the end (k = 0: identity).
    """
    d = jacobians.shape[-1]
    product = torch.eye(d, dtype=jacobians.dtype, device=jacobians.device)
    norms = [torch.linalg.matrix_norm(product, ord=2)]
    for jacobian in jacobians.flip(0):
        # $\frac{\partial s_T}{\partial s_{T-k}} = \frac{\partial s_T}{\partial s_{T-k+1}} J_{T-k+1}$
        product = product @ jacobian
        norms.append(torch.linalg.matrix_norm(product, ord=2))
    return torch.stack(norms)


def state_gradient_norms(cell: nn.Module, state0: Tensor, inputs: Tensor) -> Tensor:
    r"""$\Vert\partial s_T/\partial s_{T-k}\Vert_2$, $k = 0..T$, for a cell run on ``inputs`` (T, input_size)."""
    return gradient_norms(step_jacobians(cell, state0, inputs))
