"""TFDS build of MuCo (`muco_dataset_builder.Builder`)."""
