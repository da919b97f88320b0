"""TFDS build of MPII (`mpii_dataset_builder.Builder`)."""
