"""SynthFAS generator: parametric 3-D faces (faces), ray-marched rendering (render), capture
domains (domains), attack physics (attacks) and the dataset layout (generate)."""
