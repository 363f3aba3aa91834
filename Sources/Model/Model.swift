// Model target: see README architecture section.
