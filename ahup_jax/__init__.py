"""ahup_jax: AHuP (Adapted Human Pose) in JAX/Flax — SAA training, SPA adaptation and evaluation."""
