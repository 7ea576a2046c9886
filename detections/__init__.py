"""Detection engines (floor 2): Sigma (streaming + correlations) today; YARA, network and
intel engines beside it. Imports only ``core``; ``citysoc`` wires engines into the pipeline."""
