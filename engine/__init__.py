"""GUI-free core shared by the visualizer and every CLI: loading, latents, devices, rendering, spectra.

Never imports imgui/glfw/OpenGL. Submodules are imported explicitly (`from engine import loading`); nothing heavy
happens when this package is imported.
"""
