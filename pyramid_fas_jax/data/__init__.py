"""Data: the shared TFDS feature spec, dataset builders, augmentation and the grain pipeline.

The train loop calls `pipeline.make_train_iterator`, `pipeline.make_eval_iterator` and
`pipeline.to_global_batch`; `config.default_data_config()` documents the settings.
"""
