"""Replay-Attack TFDS builder (see replay_attack_dataset_builder.py)."""
