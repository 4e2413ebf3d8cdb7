"""GUI-free core shared by the visualizer and every CLI. Keep this file free of imports: viz/ imports
engine.protocol and must not pull in torch."""
