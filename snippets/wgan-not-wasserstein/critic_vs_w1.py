"""A WGAN critic's value E_p f - E_q f next to the exact 1-D Wasserstein distance."""
import matplotlib.pyplot as plt
import torch

from spaces_code.runtime import make_generator, pick_device
from spaces_code.wgan import (Critic, clip_weights_, critic_gap, gradient_penalty, kantorovich_potential_1d,
                              wasserstein1_1d)

device = pick_device()
gen = make_generator(0)  # a CPU generator: the same numbers on every device


def sample_p(n: int) -> torch.Tensor:  # "real": two bumps at -2 and +2
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    return (2 * sign + 0.5 * torch.randn(n, generator=gen)).to(device)


def sample_q(n: int) -> torch.Tensor:  # "generated": one bump in the middle
    return (0.5 + torch.randn(n, generator=gen)).to(device)


p_all, q_all = sample_p(20000), sample_q(20000)
w1 = wasserstein1_1d(p_all, q_all).item()
print(f"exact W1(p, q) from 20000 sorted samples each:      {w1:.3f}")


def train_critic(penalty: bool, seed: int) -> Critic:
    critic = Critic(dim=1, hidden=32, generator=make_generator(seed)).to(device)  # initial weights from `seed`
    opt = (torch.optim.Adam(critic.parameters(), lr=1e-2, betas=(0.5, 0.9)) if penalty
           else torch.optim.RMSprop(critic.parameters(), lr=1e-3))
    for _ in range(200):
        real, fake = sample_p(256)[:, None], sample_q(256)[:, None]
        loss = -critic_gap(critic, real, fake)
        if penalty:
            loss = loss + 10 * gradient_penalty(critic, real, fake, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not penalty:
            clip_weights_(critic, 0.01)
    return critic


t = torch.linspace(-5, 5, 1001, device=device)
critics = {"weight clipping, c=0.01": train_critic(penalty=False, seed=0)}
for seed in range(3):
    critics[f"gradient penalty, init {seed}"] = train_critic(penalty=True, seed=seed)
curves = {}
print(f"\n{'critic':28s} {'E_p f - E_q f':>13}  max |f'| {'ratio':>7}")
for name, critic in critics.items():
    with torch.no_grad():
        value = critic_gap(critic, p_all[:, None], q_all[:, None]).item()
        f = critic(t[:, None])
    slope = (torch.diff(f) / torch.diff(t)).abs().max().item()
    curves[name] = (f - f.mean()) / slope
    print(f"{name:28s} {value:13.3g} {slope:9.3g} {value / slope:7.3f}")
print("(gradient penalty: lambda = 10; ratio = the value divided by the critic's Lipschitz constant on [-5, 5])\n")

same = torch.stack([wasserstein1_1d(sample_p(64), sample_p(64)) for _ in range(200)]).mean().item()
cross = torch.stack([wasserstein1_1d(sample_p(64), sample_q(64)) for _ in range(200)]).mean().item()
print(f"mean W1 between two batches of 64, both from p:     {same:.3f}   (true value 0)")
print(f"mean W1 between batches of 64 from p and from q:    {cross:.3f}")

f_star = kantorovich_potential_1d(p_all, q_all, t)
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3))
axes[0].hist(p_all.cpu().numpy(), bins=100, density=True, alpha=0.5, label="p (real)")
axes[0].hist(q_all.cpu().numpy(), bins=100, density=True, alpha=0.5, label="q (generated)")
axes[0].set_title("distributions")
axes[0].legend(fontsize=8)
axes[1].plot(t.cpu(), (f_star - f_star.mean()).cpu(), "k", label=r"optimal $f^*$ (value $W_1$)")
for name, f in curves.items():
    axes[1].plot(t.cpu(), f.cpu(), label=name)
axes[1].set_title(r"critics $f / \max|f'|$, shifted to mean 0", fontsize=9)
axes[1].set_xlabel("t")
axes[1].legend(fontsize=7)
fig.tight_layout()
