// Stages target: see README architecture section.
