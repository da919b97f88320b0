"""TFDS build of ScanAva (`scanava_dataset_builder.Builder`)."""
