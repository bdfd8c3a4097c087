"""Callbacks that forward a framework's logs to ``nbsweep.log`` (optional extras).

Each module imports its framework, so import only the one you use:
``nbsweep.integrations.huggingface`` (``transformers.Trainer``),
``nbsweep.integrations.lightning`` (``lightning.Trainer``), ``nbsweep.integrations.keras``
(``keras.Model.fit``). Each offers ``NbsweepCallback``.
"""
