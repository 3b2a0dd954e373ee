"""Data: the shared TFDS feature spec, dataset builders (SynthFAS; `real_builder` for the five
real datasets), face preprocessing (`face`: MTCNN boxes and crops, `face_mesh`: pseudo depth,
`video`: frames, `preprocess`: a video end to end), augmentation and the grain pipeline.

The train loop calls `pipeline.make_train_iterator`, `pipeline.make_eval_iterator` and
`pipeline.to_global_batch`; `config.default_data_config()` documents the settings.
"""
