// TensorIO target: safetensors reader and writer.
