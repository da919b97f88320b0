"""TFDS build of SURREAL (`surreal_dataset_builder.Builder`)."""
