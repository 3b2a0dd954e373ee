"""CASIA-MFSD TFDS builder (see casia_mfsd_dataset_builder.py)."""
