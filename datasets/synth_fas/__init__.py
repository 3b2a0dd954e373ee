"""SynthFAS TFDS builder (see synth_fas_dataset_builder.py)."""
