"""Fit an unnormalised log-linear model by NCE (log Z learned as a parameter) and compare with the MLE."""
import math

import torch

from spaces_code.nce import LogLinearModel, fit, mle_loss, nce_loss, sample_states
from spaces_code.runtime import make_generator, pick_device

device = pick_device()
generator = make_generator(0)  # a CPU generator: the same numbers whichever device computes

# A "vocabulary" of V = 50 states with k = 4 features each; G(x; theta) = theta . phi(x).
vocab_size, num_data = 50, 5000
features = torch.randn(vocab_size, 4, generator=generator, dtype=torch.float64).to(device)
truth = LogLinearModel(features)
with torch.no_grad():
    truth.theta.copy_(torch.randn(4, generator=generator, dtype=torch.float64).to(device))
    true_log_prob, true_log_z = truth.exact_log_prob(), float(truth.exact_log_partition())
data = sample_states(true_log_prob, num_data, generator)
log_noise = torch.full((vocab_size,), -math.log(vocab_size), device=device, dtype=torch.float64)  # uniform q

mle = LogLinearModel(features)
fit(mle, lambda: mle_loss(mle, data))

print(f"V = {vocab_size} states, {num_data} data samples, uniform noise; true log Z = {true_log_z:.3f}")
print(f"{'estimator':<16}{'|theta - theta*|':>18}{'|theta - theta_MLE|':>21}{'learned gamma':>15}{'exact log Z(theta)':>20}")
with torch.no_grad():
    print(f"{'MLE (exact Z)':<16}{float((mle.theta - truth.theta).norm()):>18.3f}{'-':>21}{'-':>15}"
          f"{float(mle.exact_log_partition()):>20.3f}")
for noise_ratio in (1, 5, 25):
    noise = sample_states(log_noise, noise_ratio * num_data, generator)
    model = LogLinearModel(features)
    fit(model, lambda: nce_loss(model, data, noise, log_noise))
    with torch.no_grad():
        print(f"{f'NCE, nu = {noise_ratio}':<16}{float((model.theta - truth.theta).norm()):>18.3f}"
              f"{float((model.theta - mle.theta).norm()):>21.3f}{float(model.log_z):>15.3f}"
              f"{float(model.exact_log_partition()):>20.3f}")
