"""engine.loading / engine.safe_pickle: both modes, malicious pickles, bad inputs, sources (path, dir, URLs)."""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import pathlib
import pickle
import socket
import subprocess
import zipfile

import numpy as np
import pytest
import torch

import dnnlib
from engine import loading, safe_pickle
from engine.loading import LoadError, UnsafePickleError
from tests.http_server import serve_http

SG3_KWARGS = dict(
    z_dim=8,
    c_dim=0,
    w_dim=8,
    img_resolution=16,
    img_channels=3,
    channel_base=128,
    channel_max=8,
    num_layers=4,
    mapping_kwargs=dict(num_layers=1),
)
SG2_KWARGS = dict(
    z_dim=8, c_dim=3, w_dim=8, img_resolution=8, img_channels=3, channel_base=64, channel_max=8, mapping_kwargs={}
)


def _nudge(module: torch.nn.Module) -> None:
    """Random values in every parameter and float buffer (so a missed copy shows)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in list(module.parameters()) + [b for b in module.buffers() if b.is_floating_point()]:
            if t.ndim == 2 and t.shape == (3, 3):
                continue  # keep the SG3 transform valid
            t.add_(torch.randn(t.shape, generator=gen) * 0.01)


@pytest.fixture(scope='module')
def nets():
    from training import networks_stylegan2, networks_stylegan3

    torch.manual_seed(0)
    G3 = networks_stylegan3.Generator(**SG3_KWARGS).eval()
    G2 = networks_stylegan2.Generator(**SG2_KWARGS).eval()
    D2 = networks_stylegan2.Discriminator(c_dim=3, img_resolution=8, img_channels=3, channel_base=64, channel_max=8)
    for m in (G3, G2, D2):
        _nudge(m)
    return dict(G3=G3, G2=G2, D2=D2)


@pytest.fixture(scope='module')
def pkl_dir(tmp_path_factory, nets):
    d = tmp_path_factory.mktemp('pkls')
    sg3 = dict(
        G=nets['G3'],
        D=None,
        G_ema=nets['G3'],
        augment_pipe=None,
        training_set_kwargs=dnnlib.EasyDict(resolution=16, use_labels=False, max_size=np.int64(7)),
    )
    (d / 'sg3.pkl').write_bytes(pickle.dumps(sg3))
    (d / 'sg2.pkl').write_bytes(pickle.dumps(dict(G=nets['G2'], D=nets['D2'], G_ema=nets['G2'])))
    (d / 'gema_only.pkl').write_bytes(pickle.dumps({'G_ema': nets['G3']}))
    return d


def _render(G: torch.nn.Module) -> torch.Tensor:
    z = torch.from_numpy(np.random.RandomState(3).randn(2, G.z_dim).astype(np.float32))
    c = torch.eye(max(G.c_dim, 1))[:2, : G.c_dim] if G.c_dim else torch.zeros([2, 0])
    # One fixed op implementation: impl='auto' may switch to a compiled CPU kernel mid-process once its background
    # build finishes, which changes the last bits; this file compares loaders, not op implementations.
    from torch_utils import ops

    scope = ops.default_impl('ref') if hasattr(ops, 'default_impl') else contextlib.nullcontext()
    with torch.no_grad(), scope:
        return G(z, c, truncation_psi=0.7, noise_mode='const')


# ----------------------------------------------------------------------------
# Both modes render alike.


@pytest.mark.parametrize('name, key', [('sg3.pkl', 'G3'), ('sg2.pkl', 'G2')])
def test_safe_and_trusted_render_identically(pkl_dir, nets, name, key):
    expected = _render(nets[key])
    safe = loading.load_network_pkl(pkl_dir / name)
    trusted = loading.load_network_pkl(pkl_dir / name, trust=True)
    assert type(safe['G_ema']).__module__.startswith('training.networks_stylegan')
    assert torch.equal(_render(safe['G_ema']), expected)
    assert torch.equal(_render(trusted['G_ema']), expected)
    for k, v in nets[key].state_dict().items():
        assert torch.equal(safe['G_ema'].state_dict()[k], v), k
    assert safe['G_ema'].init_kwargs == nets[key].init_kwargs


def test_safe_mode_restores_attributes_and_extras(pkl_dir, nets):
    data = loading.load_network_pkl(pkl_dir / 'sg3.pkl')
    assert data['G'] is not None and data['D'] is None and data['augment_pipe'] is None
    tsk = data['training_set_kwargs']
    assert type(tsk) is dnnlib.EasyDict and tsk.resolution == 16 and tsk.max_size == 7
    assert data['G_ema'].synthesis.layer_names == nets['G3'].synthesis.layer_names
    sg2 = loading.load_network_pkl(pkl_dir / 'sg2.pkl')
    x = torch.zeros([1, 3, 8, 8])
    c = torch.eye(3)[:1]
    with torch.no_grad():
        assert torch.equal(sg2['D'].eval()(x, c), nets['D2'].eval()(x, c))


def test_gema_only_dict_and_load_generator(pkl_dir):
    data = loading.load_network_pkl(pkl_dir / 'gema_only.pkl')
    assert data['G'] is None and data['D'] is None and data['training_set_kwargs'] is None
    G = loading.load_generator(pkl_dir / 'gema_only.pkl', device='cpu')
    assert not G.training and not any(p.requires_grad for p in G.parameters())


def test_bundled_default_network_loads_in_safe_mode():
    path = loading.default_network_path()
    if not path.is_file():
        pytest.skip('models/default.pkl not written yet')
    assert path.stat().st_size < 25e6
    G = loading.load_generator(None)
    assert G.img_resolution >= 16 and G.z_dim > 0


# ----------------------------------------------------------------------------
# Malicious pickles are refused and nothing runs.


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _persistent_pickle(module_src: str, class_name: str, state: dict) -> bytes:
    """A pickle in the reference persistent format with an arbitrary embedded source."""
    from torch_utils import persistence

    class Fake:
        def __reduce__(self):
            meta = dict(type='class', version=6, module_src=module_src, class_name=class_name, state=state)
            return persistence._reconstruct_persistent_obj, (meta,)

    return pickle.dumps({'G_ema': Fake()})


def test_refuses_embedded_source_with_unknown_class(tmp_path):
    marker = tmp_path / 'pwned'
    src = f'open({str(marker)!r}, "w").write("x")\nclass Evil:\n    pass\n'
    path = tmp_path / 'evil.pkl'
    path.write_bytes(_persistent_pickle(src, 'Evil', {}))
    with pytest.raises(UnsafePickleError) as info:
        loading.load_network_pkl(path)
    assert 'Evil' in str(info.value) and '--trust' in str(info.value)
    assert any('Evil' in n for n in info.value.names)
    assert not marker.exists()


def test_payload_in_known_network_source_is_never_executed(tmp_path, pkl_dir):
    """A StyleGAN3 source with a payload appended: safe mode rebuilds with our code and runs nothing."""
    import training.networks_stylegan3 as n3

    marker = tmp_path / 'pwned'
    payload = f'\nopen({str(marker)!r}, "w").write("x")\n'

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            if name == '_reconstruct_persistent_obj':
                return lambda meta: ('META', meta)
            return super().find_class(module, name)

    meta = Recorder(io.BytesIO((pkl_dir / 'gema_only.pkl').read_bytes())).load()['G_ema'][1]
    real_src = pathlib.Path(n3.__file__).read_text()
    assert meta['module_src'] == real_src

    def patch(obj):  # the whole tree of metas gets the payload
        if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == 'META':
            m = obj[1]
            m['state']['_modules'] = {k: patch(v) for k, v in m['state']['_modules'].items()}
            return _Persistent(dict(m, module_src=m['module_src'] + payload))
        return obj

    from torch_utils import persistence

    class _Persistent:
        def __init__(self, meta):
            self.meta = meta

        def __reduce__(self):
            return persistence._reconstruct_persistent_obj, (self.meta,)

    tree = Recorder(io.BytesIO((pkl_dir / 'gema_only.pkl').read_bytes())).load()['G_ema']
    path = tmp_path / 'payload.pkl'
    path.write_bytes(pickle.dumps({'G_ema': patch(tree)}))
    G = loading.load_network_pkl(path)['G_ema']
    assert type(G) is n3.Generator
    assert not marker.exists()


@pytest.mark.parametrize(
    'func, args, refused',
    [
        (os.system, ('touch {marker}',), 'system'),
        (eval, ('open({marker!r}, "w")',), 'builtins.eval'),
        (subprocess.check_call, (['touch', '{marker}'],), 'subprocess.check_call'),
    ],
)
def test_refuses_dangerous_globals(tmp_path, func, args, refused):
    marker = tmp_path / 'pwned'
    args = tuple(
        a.format(marker=str(marker)) if isinstance(a, str) else [x.format(marker=str(marker)) for x in a] for a in args
    )
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({'G_ema': _Evil(func, *args)}))
    with pytest.raises(UnsafePickleError) as info:
        loading.load_network_pkl(path)
    assert any(refused in n for n in info.value.names), info.value.names
    assert 'trust=True' in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()


def test_refuses_persistent_id(tmp_path):
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return 'x' if obj == 'token' else None

    buf = io.BytesIO()
    P(buf).dump({'G_ema': 'token'})
    with pytest.raises(UnsafePickleError):
        safe_pickle.safe_load(io.BytesIO(buf.getvalue()))


def test_allow_list_registration_of_own_class(tmp_path):
    """A test-only class recognised through an explicit signature (class names + our module)."""
    src = 'class TinyNet:\n    pass\nclass TinyHelper:\n    pass\n'
    state = dict(_init_args=(), _init_kwargs=dict(in_features=2, out_features=3))
    data = _persistent_pickle(src, 'TinyNet', state)
    with pytest.raises(UnsafePickleError):
        safe_pickle.safe_load(io.BytesIO(data))
    sig = safe_pickle.ModuleSignature('tiny', frozenset({'TinyNet', 'TinyHelper'}), 'torch.nn')
    with pytest.raises(UnsafePickleError, match='no class TinyNet'):
        safe_pickle.safe_load(io.BytesIO(data), signatures=[sig])
    src2 = 'class Linear:\n    pass\n'
    state2 = dict(
        _init_args=(2, 3),
        _init_kwargs={},
        _parameters={'weight': torch.ones(3, 2), 'bias': torch.zeros(3)},
        _buffers={},
        _modules={},
        training=False,
        in_features=2,
    )
    sig2 = safe_pickle.ModuleSignature('lin', frozenset({'Linear'}), 'torch.nn')
    with pytest.raises(UnsafePickleError, match='at the top level'):  # no argument validator registered for it
        safe_pickle.safe_load(io.BytesIO(_persistent_pickle(src2, 'Linear', state2)), signatures=[sig2])
    checked = []

    def validate(kind, class_name, cls, args, kwargs):
        checked.append((kind, class_name, tuple(args)))
        if not all(isinstance(a, int) and 0 < a <= 16 for a in args):
            raise safe_pickle.ResourceLimitError(f'Linear sizes must be in [1, 16], got {args}')

    sig3 = safe_pickle.ModuleSignature('lin', frozenset({'Linear'}), 'torch.nn', validate_args=validate)
    got = safe_pickle.safe_load(io.BytesIO(_persistent_pickle(src2, 'Linear', state2)), signatures=[sig3])['G_ema']
    assert isinstance(got, torch.nn.Linear) and torch.equal(got.weight, torch.ones(3, 2)) and not got.training
    assert checked == [('lin', 'Linear', (2, 3))]
    big = dict(state2, _init_args=(2, 10**6))
    with pytest.raises(safe_pickle.ResourceLimitError, match=r'\[1, 16\]'):
        safe_pickle.safe_load(io.BytesIO(_persistent_pickle(src2, 'Linear', big)), signatures=[sig3])


# ----------------------------------------------------------------------------
# Bad inputs give one clear message each.


def test_missing_file(tmp_path):
    with pytest.raises(LoadError, match='not found'):
        loading.load_network_pkl(tmp_path / 'nope.pkl')


@pytest.mark.parametrize(
    'content, match',
    [
        (b'', 'empty'),
        (b'<!DOCTYPE html><html>Sign in</html>', 'not a network pickle'),
        (b'hello world\n', 'not a network pickle'),
    ],
)
def test_not_a_pickle(tmp_path, content, match):
    path = tmp_path / 'bad.pkl'
    path.write_bytes(content)
    for trust in (False, True):
        with pytest.raises(LoadError, match=match):
            loading.load_network_pkl(path, trust=trust)


def test_zip_file(tmp_path):
    path = tmp_path / 'ckpt.pt'
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('a.txt', 'x')
    with pytest.raises(LoadError, match='is a zip archive, not a network pickle'):
        loading.load_network_pkl(path)


def test_truncated_pickle(tmp_path, pkl_dir):
    data = (pkl_dir / 'gema_only.pkl').read_bytes()
    path = tmp_path / 'cut.pkl'
    path.write_bytes(data[: len(data) // 2])
    for trust in (False, True):
        with pytest.raises(LoadError, match='truncated'):
            loading.load_network_pkl(path, trust=trust)


@pytest.mark.parametrize('obj', [{'G': None, 'D': None}, [1, 2], {'G_ema': 'not a network'}])
def test_pickle_without_g_ema(tmp_path, obj):
    path = tmp_path / 'no_gema.pkl'
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(LoadError, match='G_ema'):
        loading.load_network_pkl(path)


# ----------------------------------------------------------------------------
# Sources.


def test_run_dir_resolves_newest_snapshot(tmp_path, pkl_dir):
    run = tmp_path / '00000-stylegan3-t-data-gpus1-batch4-gamma1'
    run.mkdir()
    (run / 'network-snapshot-000000.pkl').write_bytes(b'old')
    (run / 'network-snapshot-000040.pkl').write_bytes((pkl_dir / 'gema_only.pkl').read_bytes())
    (run / 'log.txt').write_text('x')
    assert loading.resolve_source(run).name == 'network-snapshot-000040.pkl'
    assert loading.load_network_pkl(str(run))['G_ema'] is not None
    empty = tmp_path / 'empty-run'
    empty.mkdir()
    with pytest.raises(LoadError, match='no network-snapshot'):
        loading.load_network_pkl(empty)


def test_file_url(pkl_dir):
    url = (pkl_dir / 'gema_only.pkl').resolve().as_uri()
    assert url.startswith('file://')
    assert loading.resolve_source(url) == (pkl_dir / 'gema_only.pkl').resolve()
    with pytest.raises(LoadError, match='unsupported URL scheme'):
        loading.resolve_source('ftp://example.org/x.pkl')


@contextlib.contextmanager
def _http_server(directory: pathlib.Path, bad_length: bool = False):
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args):
            pass

        def do_GET(self):
            requests.append(self.path)
            if self.path.endswith('.html'):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'<!DOCTYPE html><html>quota exceeded</html>')
                return
            if bad_length:  # promise more bytes than are sent, then hang up
                self.send_response(200)
                self.send_header('Content-Length', '1000')
                self.end_headers()
                self.wfile.write(b'\x80\x04short')
                return
            super().do_GET()

    with serve_http(Handler) as url:
        yield url, requests


def test_http_download_cached_once(tmp_path, pkl_dir, monkeypatch):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    with _http_server(pkl_dir) as (base, requests):
        url = f'{base}/gema_only.pkl'
        data = loading.load_network_pkl(url, progress=False)
        assert data['G_ema'] is not None
        again = loading.resolve_source(url, progress=False)
        assert requests == ['/gema_only.pkl']  # the second call used the cache
        assert again.read_bytes() == (pkl_dir / 'gema_only.pkl').read_bytes()
        assert again.parent == tmp_path / 'cache' / 'sg3viz' / 'downloads'
        with pytest.raises(LoadError, match='could not download.*404'):
            loading.resolve_source(f'{base}/missing.pkl', retries=3, progress=False)
        assert requests.count('/missing.pkl') == 1  # 4xx: no retries
        with pytest.raises(LoadError, match='HTML page'):
            loading.resolve_source(f'{base}/login.html', progress=False)
    assert [p.name for p in again.parent.iterdir()] == [again.name]


def test_http_incomplete_download_leaves_no_file(tmp_path):
    cache = tmp_path / 'cache'
    with _http_server(tmp_path, bad_length=True) as (base, requests):
        with pytest.raises(LoadError, match='could not download'):
            loading.download(f'{base}/net.pkl', cache=cache, retries=2, timeout=5, progress=False)
        assert len(requests) == 2
    assert list(cache.iterdir()) == []  # neither a partial file nor a temp file


def test_bad_downloaded_pickle_is_removed_from_cache(tmp_path, pkl_dir):
    served = tmp_path / 'served'
    served.mkdir()
    (served / 'trunc.pkl').write_bytes((pkl_dir / 'gema_only.pkl').read_bytes()[:2000])
    (served / 'text.pkl').write_bytes(b'not a pickle')
    cache = tmp_path / 'cache'
    with _http_server(served) as (base, requests):
        for name, match in [
            ('trunc.pkl', 'could not download.*the pickle does not parse'),  # refused before it enters the cache
            ('text.pkl', 'not a network pickle.*removed from the cache'),
        ]:
            with pytest.raises(LoadError, match=match):
                loading.load_network_pkl(f'{base}/{name}', cache=cache, retries=1, progress=False)
            assert list(cache.iterdir()) == []  # the next run downloads again instead of reusing the bad file


def test_unreachable_url_fails_fast(tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(LoadError, match=f'could not download http://127.0.0.1:{port}/x.pkl'):
        loading.load_network_pkl(f'http://127.0.0.1:{port}/x.pkl', cache=tmp_path, retries=2, timeout=2, progress=False)


# ----------------------------------------------------------------------------
# NumPy 1 <-> 2 module names.


def test_numpy_module_remapping(tmp_path):
    assert safe_pickle.remap_numpy_module('numpy.core.multiarray') == safe_pickle.remap_numpy_module(
        'numpy._core.multiarray'
    )
    assert safe_pickle.remap_numpy_module('numpy.random') == 'numpy.random'
    obj = dnnlib.EasyDict(a=np.float32(1.5), b=np.arange(3, dtype=np.int64), s={1, 2})
    raw = pickle.dumps(obj, protocol=2)  # text GLOBAL opcodes: module names can be rewritten
    for old, new in [(b'numpy._core.', b'numpy.core.'), (b'numpy.core.', b'numpy._core.')]:
        variant = raw.replace(old, new)
        for load in (safe_pickle.safe_load, safe_pickle.trusted_load):
            got = load(io.BytesIO(variant))
            assert type(got) is dnnlib.EasyDict and got.a == np.float32(1.5) and got.s == {1, 2}
            assert np.array_equal(got.b, np.arange(3))


def test_protocol2_network_pickle_loads_in_safe_mode(nets):
    raw = pickle.dumps({'G_ema': nets['G2']}, protocol=2)
    G = safe_pickle.safe_load(io.BytesIO(raw))['G_ema']
    assert torch.equal(_render(G), _render(nets['G2']))


def test_extra_that_cannot_be_rebuilt_becomes_none(tmp_path, pkl_dir):
    """Only G_ema is essential: a D our code cannot rebuild is dropped (with a warning), G_ema still loads."""
    from torch_utils import persistence

    class FakeD:
        def __reduce__(self):
            src = 'class DiscriminatorBlock:\n    pass\nclass Discriminator:\n    pass\n'
            state = dict(_init_args=(), _init_kwargs=dict(bogus_argument=1))
            meta = dict(type='class', version=6, module_src=src, class_name='Discriminator', state=state)
            return persistence._reconstruct_persistent_obj, (meta,)

    G = loading.load_network_pkl(pkl_dir / 'gema_only.pkl')['G_ema']
    path = tmp_path / 'bad_d.pkl'
    path.write_bytes(pickle.dumps({'G_ema': G, 'D': FakeD()}))
    data = loading.load_network_pkl(path)
    assert data['D'] is None and isinstance(data['G_ema'], torch.nn.Module)
    path.write_bytes(pickle.dumps({'G_ema': FakeD()}))
    with pytest.raises(LoadError, match='cannot rebuild Discriminator'):
        loading.load_network_pkl(path)
