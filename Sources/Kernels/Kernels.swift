// Kernels target: see README architecture section.
