# CPU backend: one source tree built once per ISA variant.
