// Quant target: see README architecture section.
