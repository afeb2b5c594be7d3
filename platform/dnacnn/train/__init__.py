"""Training on Ray Train: metrics, callbacks, the per-worker loop, the trainer, report figures.

- ``metrics``, ``callbacks``, ``plots``: pure functions and small state machines;
- ``loop``: ``train_loop_per_worker`` for ``ray.train.torch.TorchTrainer`` and the checkpoint format;
- ``trainer``: ``fit(job)`` and ``train_and_register(job)`` (imports Ray; import it explicitly).
"""
