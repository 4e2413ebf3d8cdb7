"""Window / OpenGL / Dear ImGui glue for the visualizer (GLFW + imgui-bundle + PyOpenGL).

Never imports torch. Submodules are imported explicitly (``gui_utils.imgui_window``, ``gui_utils.gl_utils``, ...)
so that importing the package itself is free of GL and windowing side effects.
"""
