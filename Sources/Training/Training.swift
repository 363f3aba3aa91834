// Training target: see README architecture section.
