"""Native kernels the jitted programs call through XLA FFI (oneDNN convolutions on CPU)."""
