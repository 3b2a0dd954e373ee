"""OULU-NPU TFDS builder (see oulu_npu_dataset_builder.py)."""
