"""The article's layer-reuse code, verbatim, under Keras 3 with the PyTorch backend, and its torch twin."""
import os

os.environ["KERAS_BACKEND"] = "torch"  # Keras 3 on PyTorch: must be set before keras is imported

from spaces_code.runtime import make_generator, pick_device

device = pick_device()
os.environ["KERAS_TORCH_DEVICE"] = device.type  # Keras creates its variables on the same device
generator = make_generator(0)  # CPU generator; also seeds Python's `random`, where Keras draws its seeds

import torch
from keras.layers import Input, Dense
from keras.models import Model

from spaces_code.keras_reuse import ReusedLinear, distinct_weights, per_call_kernel_gradients

x_in = Input(shape=(784,))
x = x_in

layer = Dense(784, activation='relu') # 初始化一个层,并存起来

x = layer(x) # 第一次调用
x = layer(x) # 再次调用
x = layer(x) # 再次调用

model = Model(x_in, x)
print(f"Dense layer called 3 times -> model.weights: {len(model.weights)} "
      f"({', '.join(f'{w.path} {tuple(w.shape)}' for w in model.weights)})")
print(f"model.weights[0] is layer.kernel: {model.weights[0] is layer.kernel}, "
      f"distinct weight tensors: {distinct_weights(model)}, parameters: {model.count_params():,}")

twin = ReusedLinear.from_keras(layer, times=3)  # one nn.Linear applied three times
print(f"PyTorch twin: {len(list(twin.parameters()))} parameter tensors, "
      f"{sum(p.numel() for p in twin.parameters()):,} numbers")

inputs = torch.rand(16, 784, generator=generator).to(device)
keras_out = model(inputs)
with torch.no_grad():
    torch_out = twin(inputs)
print(f"max |Keras - PyTorch| on a batch of 16: {(keras_out - torch_out).abs().max().item():.1e} "
      f"(output scale {torch_out.abs().max().item():.2f})")

# One kernel, three calls: its gradient is the sum of the gradients each call would give its own copy.
target = torch.zeros_like(inputs)
shared = torch.autograd.grad((model(inputs) - target).pow(2).mean(), layer.kernel.value)[0]
per_call = per_call_kernel_gradients(layer, inputs, target, times=3)  # (3, 784, 784)
print("|dL/dW_k| per call: " + ", ".join(f"{float(g.norm()):.2e}" for g in per_call)
      + f"; |dL/dW - sum_k dL/dW_k| = {float((shared - per_call.sum(0)).norm()):.1e}")
