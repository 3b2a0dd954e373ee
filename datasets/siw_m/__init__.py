"""SiW-M TFDS builder (see siw_m_dataset_builder.py)."""
