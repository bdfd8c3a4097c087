"""A Hugging Face ``Trainer`` with ``report_to="wandb"``, unchanged from W&B code: a tiny
model learns y = x1 + x2 + x3 + x4 from 64 points, on CPU. Agents load this module by name.
"""

from __future__ import annotations

import tempfile
from typing import Any


def huggingface(config: Any) -> None:
    import torch
    from transformers import Trainer, TrainingArguments

    class Points(torch.utils.data.Dataset):
        def __init__(self) -> None:
            generator = torch.Generator().manual_seed(0)
            self.x = torch.randn(64, 4, generator=generator)
            self.y = self.x.sum(dim=1, keepdim=True)

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"x": self.x[i], "labels": self.y[i]}

    class Linear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def forward(self, x: Any, labels: Any) -> dict[str, Any]:
            out = self.layer(x)
            return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as output:
        args = TrainingArguments(
            output_dir=output,
            num_train_epochs=config.epochs,
            learning_rate=config.lr,
            per_device_train_batch_size=16,
            eval_strategy="epoch",
            logging_strategy="epoch",
            save_strategy="no",
            report_to="wandb",  # W&B's integration, as the seed's Trainer has it
            use_cpu=True,
            disable_tqdm=True,
        )
        data = Points()
        Trainer(model=Linear(), args=args, train_dataset=data, eval_dataset=data).train()
