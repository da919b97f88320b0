"""TFDS build of Human36M (`human36m_dataset_builder.Builder`)."""
