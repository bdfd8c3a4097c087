"""``torchvision.datasets.MNIST``: 100 made-up images in place of the download."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class MNIST(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """MNIST's signature and item types (a 28x28 uint8 image through ``transform``, an int)."""

    def __init__(
        self,
        root: str,
        train: bool = True,
        download: bool = False,
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        generator = torch.Generator().manual_seed(0 if train else 1)
        self.data = torch.randint(0, 256, (100, 28, 28), dtype=torch.uint8, generator=generator)
        self.targets = torch.arange(100) % 10
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.data[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])
