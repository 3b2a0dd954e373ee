"""MSU-MFSD TFDS builder (see msu_mfsd_dataset_builder.py)."""
