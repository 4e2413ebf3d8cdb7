"""Image scaling on screen: whole-number magnification (every image pixel is the same size block) and smooth
downscaling (mipmapped textures average texels). Runs under the private Xvfb display of tests/viz/conftest.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _block_sizes(row: np.ndarray) -> list[int]:
    """Lengths of the runs of equal colour along a row [W, 3] (first and last runs excluded: they may be cut)."""
    change = np.flatnonzero(np.any(row[1:] != row[:-1], axis=-1)) + 1
    return np.diff(change).tolist()


def test_image_pixels_are_uniform_blocks(run_viz, png, tmp_path):
    # 1200x700: the image area allows a zoom of ~10.5 for the 64 px fake image; fractional zooms >= 1 used to be
    # kept above 8x, alternating 10- and 11-pixel blocks.
    shot, state = tmp_path / 'shot.png', tmp_path / 'state.json'
    script = [{'wait_result': True}, {'wait_frames': 3}, {'screenshot': str(shot)}, {'dump_state': str(state)}]
    r = run_viz(['--fake-renderer', '--window', '1200x700'], script)
    assert r.returncode == 0, r.stderr[-3000:]
    st = json.loads(state.read_text())
    x, y, fw, fh = st['image_rect']
    h, w = st['image_shape'][:2]
    zoom = fw / w
    assert zoom == int(zoom) and zoom >= 8 and fh == h * zoom, st['image_rect']
    assert x == int(x) and y == int(y)
    img = png(shot)[int(y) : int(y + fh), int(x) : int(x + fw)]  # [fh, fw, 3]
    z = int(zoom)
    blocks = img.reshape(h, z, w, z, 3)
    assert (blocks == blocks[:, :1, :, :1]).all(), 'every image pixel must be one uniform z x z block'
    sizes = [s for i in range(0, int(fh), z) for s in _block_sizes(img[i])]
    assert sizes and all(s % z == 0 for s in sizes), sorted(set(sizes))


_MIPMAP_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import OpenGL.GL as gl
    from gui_utils.glfw_window import GlfwWindow
    from gui_utils.gl_utils import Texture

    win = GlfwWindow(title='mipmap test', window_width=64, window_height=64, visible=False)
    checker = ((np.indices((64, 64)).sum(axis=0) % 2) * 255).astype(np.uint8)  # 1-pixel checkerboard [64, 64]
    out = {}
    for mipmap in (True, False):
        tex = Texture(np.stack([checker] * 3, axis=-1), mipmap=mipmap)
        gl.glBindTexture(gl.GL_TEXTURE_2D, tex.gl_id)
        out[f'min_filter_{mipmap}'] = int(gl.glGetTexParameteriv(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER))
        if mipmap:
            level2 = gl.glGetTexImage(gl.GL_TEXTURE_2D, 2, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE)
            level2 = np.frombuffer(level2, np.uint8).reshape(16, 16, 4)
            out['level2_min'] = int(level2[..., :3].min())
            out['level2_max'] = int(level2[..., :3].max())
        tex.delete()
    out['linear_mipmap_linear'] = int(gl.GL_LINEAR_MIPMAP_LINEAR)
    out['linear'] = int(gl.GL_LINEAR)
    win.close()
    print(json.dumps(out))
    """
)


def test_texture_downscales_by_averaging(gui_env, tmp_path):
    r = subprocess.run(
        [sys.executable, '-c', _MIPMAP_SCRIPT], env=gui_env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out['min_filter_True'] == out['linear_mipmap_linear']
    assert out['min_filter_False'] == out['linear']
    # A quarter-size level of a 1-pixel checkerboard is mid-grey everywhere: texels are averaged, not skipped.
    assert 120 <= out['level2_min'] <= out['level2_max'] <= 135, out
