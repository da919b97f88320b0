"""TFDS build of MSCOCO (`mscoco_dataset_builder.Builder`)."""
