"""A stand-in for the part of torchvision the W&B tutorial uses: ``datasets.MNIST`` and three
``transforms``, so that its ``build_dataset`` runs byte for byte without torchvision or a
download. MNIST is 100 made-up 28x28 images of 10 classes (uint8, as MNIST's)."""

from torchvision import datasets, transforms

__all__ = ["datasets", "transforms"]
