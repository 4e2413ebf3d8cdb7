"""Layers & channels widget: layer table, channel view, brightness, stats, FFT view (docs/compatibility.md §6)."""

from __future__ import annotations

from imgui_bundle import imgui

from engine.protocol import REQUEST_LIMITS
from viz.widget import Widget, clamp, edited

OUTPUT_LAYER = 'output'
_CLAMP = imgui.SliderFlags_.always_clamp


def layer_rows(layers) -> list[tuple[str, str, int, str]]:
    """Table rows (name, 'HxW', channels, dtype) from RenderResult.layers (LayerInfo shape [N, C, H, W])."""
    rows = []
    for info in layers:
        shape = tuple(info.shape)
        c = int(shape[1]) if len(shape) >= 2 else 0
        hw = f'{shape[2]}x{shape[3]}' if len(shape) >= 4 else 'x'.join(str(s) for s in shape[2:]) or '-'
        rows.append((info.name, hw, c, str(info.dtype)))
    return rows


def clamp_base_channel(base: int, num_channels: int, sel_channels: int) -> int:
    """First displayed channel clamped so that ``sel_channels`` consecutive channels fit (0 when they cannot)."""
    return int(max(0, min(int(base), num_channels - sel_channels)))


class LayerWidget(Widget):
    """Layer table (select one), RGB / single channel, normalise, brightness dB, channel drag and -/+, stats, FFT.

    State mirrors the RenderRequest fields: ``layer_name`` (None = final image), ``sel_channels`` (1 or 3),
    ``base_channel``, ``img_scale_db``, ``img_normalize``, ``img_center``, ``fft_show``, ``fft_all``, ``fft_range_db``, ``fft_beta``.
    """

    TITLE = 'Layers & channels'
    KEY = 'layers'
    STATE_KEYS = (
        'layer_name',
        'sel_channels',
        'base_channel',
        'img_scale_db',
        'img_normalize',
        'img_center',
        'fft_show',
        'fft_all',
        'fft_range_db',
        'fft_beta',
    )

    DB_RANGE = REQUEST_LIMITS['img_scale_db']
    FFT_RANGE_DB = REQUEST_LIMITS['fft_range_db']
    FFT_BETA = REQUEST_LIMITS['fft_beta']

    def __init__(self, viz=None) -> None:
        super().__init__(viz)
        self.layer_name: str | None = None
        self.sel_channels = 3
        self.base_channel = 0
        self.img_scale_db = 0.0
        self.img_normalize = False
        self.img_center = False
        self.fft_show = False
        self.fft_all = True
        self.fft_range_db = 50.0
        self.fft_beta = 8.0

    def validate(self) -> None:
        if self.layer_name == OUTPUT_LAYER:
            self.layer_name = None
        self.sel_channels = 3 if self.sel_channels >= 3 else 1
        self.base_channel = int(clamp('base_channel', self.base_channel, self))
        self.img_scale_db = float(clamp('img_scale_db', self.img_scale_db, self))
        self.fft_range_db = float(clamp('fft_range_db', self.fft_range_db, self))
        self.fft_beta = float(clamp('fft_beta', self.fft_beta, self))

    def _layers(self):
        return self.view.layers

    def num_channels(self) -> int | None:
        """Channels of the selected layer (None when unknown)."""
        target = self.layer_name or OUTPUT_LAYER
        layers = self._layers()
        for info in layers:
            if info.name == target and len(info.shape) >= 2:
                return int(info.shape[1])
        if self.layer_name is None and layers:
            return int(layers[-1].shape[1]) if len(layers[-1].shape) >= 2 else None
        return None

    def update_request(self, args, dt) -> None:
        c = self.num_channels()
        if c is not None:
            self.base_channel = clamp_base_channel(self.base_channel, c, self.sel_channels)
        args['layer_name'] = self.layer_name
        args['sel_channels'] = self.sel_channels
        args['base_channel'] = self.base_channel
        args['img_scale_db'] = self.img_scale_db
        args['img_normalize'] = self.img_normalize
        args['img_center'] = self.img_center
        args['fft_show'] = self.fft_show
        args['fft_all'] = self.fft_all
        args['fft_range_db'] = self.fft_range_db
        args['fft_beta'] = self.fft_beta

    # ---- drawing ----------------------------------------------------------------------------------------------
    def _draw_table(self) -> None:
        fs = self.font_size
        flags = (
            imgui.TableFlags_.row_bg
            | imgui.TableFlags_.borders_outer
            | imgui.TableFlags_.scroll_y
            | imgui.TableFlags_.sizing_stretch_prop
        )
        rows = layer_rows(self._layers())
        height = fs * 1.45 * min(max(len(rows), 3), 9) + fs * 1.6
        if imgui.begin_table('##layers', 4, flags, imgui.ImVec2(0, height)):
            imgui.table_setup_scroll_freeze(0, 1)
            imgui.table_setup_column('Layer', imgui.TableColumnFlags_.width_stretch, 3.0)
            imgui.table_setup_column('HxW', imgui.TableColumnFlags_.width_stretch, 1.3)
            imgui.table_setup_column('C', imgui.TableColumnFlags_.width_stretch, 0.8)
            imgui.table_setup_column('dtype', imgui.TableColumnFlags_.width_stretch, 1.2)
            imgui.table_headers_row()
            current = self.layer_name or OUTPUT_LAYER
            for name, hw, c, dtype in rows:
                imgui.table_next_row()
                imgui.table_next_column()
                clicked, _ = imgui.selectable(f'{name}##row', name == current, imgui.SelectableFlags_.span_all_columns)
                if clicked:
                    self.layer_name = None if name == OUTPUT_LAYER else name
                imgui.table_next_column()
                imgui.text(hw)
                imgui.table_next_column()
                imgui.text(str(c))
                imgui.table_next_column()
                imgui.text(dtype)
            imgui.end_table()
        if not rows:
            imgui.text_disabled('(layers appear after the first render)')

    def _draw_channels(self) -> None:
        fs = self.font_size
        c = self.num_channels() or 3
        changed, rgb = imgui.checkbox('RGB', self.sel_channels == 3)
        if changed:
            self.sel_channels = 3 if rgb else 1
        imgui.same_line()
        _, self.img_normalize = imgui.checkbox('Normalize', self.img_normalize)
        if imgui.is_item_hovered():
            imgui.set_tooltip('Divide each shown channel by its max |value| (0 stays mid-grey)')
        imgui.same_line()
        _, self.img_center = imgui.checkbox('Centre', self.img_center)
        if imgui.is_item_hovered():
            imgui.set_tooltip("Subtract each shown channel's mean first (mean-centred view)")
        imgui.same_line()
        imgui.set_next_item_width(fs * 9)
        # Drags, not sliders: no grab handle over the number; always_clamp keeps typed values in range.
        self.img_scale_db = edited(
            self.img_scale_db,
            imgui.drag_float('##db', self.img_scale_db, 0.1, *self.DB_RANGE, 'Brightness %+.1f dB', _CLAMP),
        )
        imgui.same_line()
        if imgui.button('Reset##db'):
            self.img_scale_db = 0.0
        max_base = max(c - self.sel_channels, 0)
        imgui.begin_disabled(max_base == 0)
        imgui.set_next_item_width(fs * 9)
        label = 'Channel %d' if self.sel_channels == 1 else 'Channels %d+'
        changed, v = imgui.drag_int('##channel', self.base_channel, 0.05, 0, max_base, label + f'/{c}', _CLAMP)
        if changed:
            self.base_channel = clamp_base_channel(v, c, self.sel_channels)
        imgui.same_line()
        if imgui.button('-##ch'):
            self.base_channel = clamp_base_channel(self.base_channel - 1, c, self.sel_channels)
        imgui.same_line()
        if imgui.button('+##ch'):
            self.base_channel = clamp_base_channel(self.base_channel + 1, c, self.sel_channels)
        imgui.end_disabled()

    def _draw_stats(self) -> None:
        stats = self.view.stats
        if not stats:
            return
        flags = imgui.TableFlags_.borders_inner_v | imgui.TableFlags_.row_bg
        if imgui.begin_table('##stats', 3, flags):
            imgui.table_setup_column('Statistic')
            imgui.table_setup_column('All channels')
            imgui.table_setup_column('Selected')
            imgui.table_headers_row()
            for key, label in (('mean', 'Mean'), ('std', 'Std'), ('max', 'Max |x|')):
                if key not in stats:
                    continue
                v = stats[key]
                a, s = (v[0], v[1]) if isinstance(v, list | tuple) and len(v) >= 2 else (v, v)
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text(label)
                imgui.table_next_column()
                imgui.text(f'{a:.4g}')
                imgui.table_next_column()
                imgui.text(f'{s:.4g}')
            imgui.end_table()

    def _draw_fft(self) -> None:
        fs = self.font_size
        _, self.fft_show = imgui.checkbox('FFT', self.fft_show)
        imgui.same_line()
        imgui.begin_disabled(not self.fft_show)
        _, self.fft_all = imgui.checkbox('All channels', self.fft_all)
        imgui.same_line()
        imgui.set_next_item_width(fs * 7)
        self.fft_range_db = edited(
            self.fft_range_db,
            imgui.drag_float('##fft_range', self.fft_range_db, 0.2, *self.FFT_RANGE_DB, 'Range +-%.1f dB', _CLAMP),
        )
        imgui.same_line()
        imgui.set_next_item_width(fs * 6)
        self.fft_beta = edited(
            self.fft_beta, imgui.drag_float('##fft_beta', self.fft_beta, 0.1, *self.FFT_BETA, 'Beta %.1f', _CLAMP)
        )
        imgui.end_disabled()

    def draw(self) -> None:
        self._draw_table()
        self._draw_channels()
        self._draw_stats()
        self._draw_fft()
        if imgui.button('Reset##layers'):
            self.reset()
