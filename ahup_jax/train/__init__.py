"""SAA training: state with two optimizers, the jitted step, and the epoch loop."""
