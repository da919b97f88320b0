"""TFDS build of MuPoTS (`mupots_dataset_builder.Builder`)."""
