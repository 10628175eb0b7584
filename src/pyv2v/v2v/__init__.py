"""v2v: the conversion server (inputs, overlay, inspection, conversion, copy, outputs)."""
