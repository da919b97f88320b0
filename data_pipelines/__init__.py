"""Input pipelines of ahup_jax: dataset readers, tf.data augmentation, pivoted batches, embedded data."""
