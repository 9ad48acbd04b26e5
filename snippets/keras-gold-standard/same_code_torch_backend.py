"""One Keras model definition: trained with the PyTorch backend, checked against plain PyTorch, then run
unchanged on the JAX backend in another process; a "clever" layer that calls torch directly does not port."""
import os

from spaces_code.keras_backend_process import BackendProcess

# Forked now, before this process imports Keras: the child imports Keras on JAX while this one trains.
jax_process = BackendProcess("jax")
os.environ["KERAS_BACKEND"] = "torch"  # Keras 3 on PyTorch: must be set before keras is imported

from spaces_code.runtime import make_generator, pick_device

device = pick_device()
os.environ["KERAS_TORCH_DEVICE"] = device.type  # Keras creates its variables on the same device
generator = make_generator(0)  # a CPU generator: the data are the same whichever device trains

import keras

from spaces_code.keras_portable import (BackendPortError, ClassifierConfig, build_classifier,
                                        compile_classifier, toy_dataset, torch_forward)

config = ClassifierConfig()
x_train, y_train = toy_dataset(512, config, generator, device)
x_test, y_test = toy_dataset(256, config, generator, device)

model = compile_classifier(build_classifier(config, seed=0))
print(f"Keras {keras.__version__}, backend: {keras.backend.backend()}, "
      f"parameters: {model.count_params():,}")
history = model.fit(x_train.cpu().numpy(), y_train.cpu().numpy(), batch_size=64, epochs=3,
                    shuffle=False, verbose=0)
print("epoch  loss    accuracy")
for epoch, (loss, acc) in enumerate(zip(history.history["loss"], history.history["accuracy"]), 1):
    print(f"{epoch:>5}  {loss:.3f}   {acc:.3f}")
test_loss, test_acc = model.evaluate(x_test.cpu().numpy(), y_test.cpu().numpy(), verbose=0)
print(f"test accuracy: {test_acc:.3f}")

keras_logits = model(x_test)  # a torch.Tensor: the torch backend computes with torch ops
torch_logits = torch_forward(model, x_test)  # the same formula written directly in torch
print(f"Keras output type: {type(keras_logits).__module__}.{type(keras_logits).__name__}, "
      f"max |Keras - plain torch| = {(keras_logits - torch_logits).abs().max().item():.1e}")

# The "clever" variant pools with torch.sum / torch.clamp instead of keras.ops: same numbers here ...
clever = build_classifier(config, clever=True)
clever.set_weights(model.get_weights())
print(f"clever layer on torch: max |clever - standard| = "
      f"{(clever(x_test) - keras_logits).abs().max().item():.1e}")

# ... then the same build_classifier, with the trained weights, in the other process on the JAX backend.
keras_logits = keras_logits.detach().cpu().numpy()
standard, shortcut = jax_process.logits(config, model.get_weights(), x_test.cpu().numpy(), variants=(False, True))
jax_process.close()
print(f"standard model on jax: max |jax - torch| = {abs(standard - keras_logits).max():.1e}, "
      f"same predictions: {(standard.argmax(1) == keras_logits.argmax(1)).all()}")
assert isinstance(shortcut, BackendPortError)
print(f"clever layer on jax: {shortcut}")
