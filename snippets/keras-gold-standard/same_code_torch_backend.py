"""One Keras model definition, trained with the PyTorch backend, checked against plain PyTorch."""
import os

os.environ["KERAS_BACKEND"] = "torch"  # Keras 3 on PyTorch: must be set before keras is imported

from spaces_code.runtime import make_generator, pick_device

device = pick_device()
os.environ["KERAS_TORCH_DEVICE"] = device.type  # Keras creates its variables on the same device
generator = make_generator(0, device)  # also seeds Python's `random`, where Keras draws its seeds

import keras

from spaces_code.keras_portable import (ClassifierConfig, build_classifier, compile_classifier,
                                        toy_dataset, torch_forward)

config = ClassifierConfig()
x_train, y_train = toy_dataset(512, config, generator, device)
x_test, y_test = toy_dataset(256, config, generator, device)

model = compile_classifier(build_classifier(config))
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
