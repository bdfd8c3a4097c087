"""Tiny real models trained by each framework, logging through nbsweep's callbacks (or, for
Hugging Face, through W&B's ``report_to="wandb"``: tests/wandb).

Each learns y = x1 + x2 + x3 + x4 from 64 points; ``config.lr`` 0 leaves it untrained, which
early termination then stops. Frameworks are imported inside the functions: agents load this
module by name and only the framework a sweep uses is imported. Each trains on one thread:
on a busy machine, torch's thread pool spinning over batches of 16 costs ten times the work.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _data(seed: int = 0) -> tuple[Any, Any]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=generator)
    return x, x.sum(dim=1, keepdim=True)


@contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one thread while the model trains; the caller's setting back after (the tests
    run these functions in the pytest process too)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def huggingface(config: Any) -> None:
    """The Trainer with nbsweep's ``NbsweepCallback`` (``report_to="none"``)."""
    from nbsweep.integrations.huggingface import NbsweepCallback

    _huggingface(config, report_to="none", callbacks=[NbsweepCallback()])


def huggingface_report_to_wandb(config: Any) -> None:
    """The same Trainer as W&B code has it: ``report_to="wandb"``, no nbsweep callback."""
    _huggingface(config, report_to="wandb", callbacks=[])


def _huggingface(config: Any, report_to: str, callbacks: list[Any]) -> None:
    import torch
    from transformers import Trainer, TrainingArguments

    class Points(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.x, self.y = _data()

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
    with tempfile.TemporaryDirectory() as output, _one_thread():
        args = TrainingArguments(
            output_dir=output,
            num_train_epochs=config.epochs,
            learning_rate=config.lr,
            per_device_train_batch_size=16,
            eval_strategy="epoch",
            logging_strategy="epoch",
            save_strategy="no",
            report_to=report_to,
            use_cpu=True,
            disable_tqdm=True,
        )
        data = Points()
        trainer = Trainer(
            model=Linear(),
            args=args,
            train_dataset=data,
            eval_dataset=data,
            callbacks=callbacks,
        )
        trainer.train()


def lightning(config: Any) -> None:
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from nbsweep.integrations.lightning import NbsweepCallback

    class Linear(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, index: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, index: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=config.lr)

    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(*_data()), batch_size=16)
    trainer = L.Trainer(
        max_epochs=config.epochs,
        accelerator="cpu",
        callbacks=[NbsweepCallback()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        check_val_every_n_epoch=config.get("val_every", 1),
    )
    with _one_thread():
        trainer.fit(Linear(), loader, loader)


def keras(config: Any) -> None:
    import keras

    from nbsweep.integrations.keras import NbsweepCallback

    keras.utils.set_random_seed(0)
    x, y = (t.numpy() for t in _data())
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=config.lr), loss="mse")
    with _one_thread():
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=config.epochs,
            validation_data=(x, y),
            verbose=0,
            callbacks=[NbsweepCallback()],
        )
