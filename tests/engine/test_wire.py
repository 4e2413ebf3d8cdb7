"""The remote-rendering wire format: framing, typed JSON conversion, image codecs, root confinement."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest

from engine import wire
from engine.protocol import LayerInfo, NetInfo, RenderRequest, RenderResult
from engine.serve import confine_source, list_server_files
from engine.wire import WireError

FULL_REQUEST = RenderRequest(
    pkl='runs/00001/network-snapshot-000010.pkl',
    trust=True,
    device='cuda:1',
    w0_seeds=((3, 0.25), (-7, 0.75)),
    class_idx=4,
    stylemix_idx=(0, 2, 5),
    stylemix_seed=11,
    trunc_psi=0.7,
    trunc_cutoff=8,
    noise_mode='random',
    noise_seed=5,
    force_fp32=True,
    layer_name='L3_52_256',
    sel_channels=1,
    base_channel=9,
    img_scale_db=-3.5,
    img_normalize=True,
    fft_show=True,
    fft_all=False,
    fft_range_db=40.0,
    fft_beta=6.0,
    input_transform=((0.5, -0.8, 0.1), (0.8, 0.5, -0.2), (0.0, 0.0, 1.0)),
    untransform=True,
)


def _image(h=48, w=40, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 5 % 256, y * 5 % 256, (x + y) * 3 % 256], -1) + rng.integers(0, 8, (h, w, 3))
    return img.clip(0, 255).astype(np.uint8)


def test_request_round_trip_keeps_every_field():
    d = wire.request_to_wire(FULL_REQUEST)
    assert 'stamp' not in d
    back = wire.request_from_wire(json.loads(json.dumps(d)))
    assert back == FULL_REQUEST
    assert back.w0_seeds == ((3, 0.25), (-7, 0.75)) and isinstance(back.stylemix_idx, tuple)
    assert wire.request_from_wire({}) == RenderRequest()  # Missing fields take the defaults.


@pytest.mark.parametrize(
    ('value', 'needle'),
    [
        ({'pkl': 3}, 'request.pkl must be a string'),
        ({'pkl': 'a' * (wire.MAX_STR_LEN + 1)}, 'at most'),
        ({'pkl': 'a\x00b'}, 'NUL'),
        ({'trust': 1}, 'request.trust must be true or false'),
        ({'trunc_psi': True}, 'request.trunc_psi must be a number'),
        ({'trunc_psi': '0.5'}, 'request.trunc_psi must be a number'),
        ({'noise_seed': 1.5}, 'request.noise_seed must be an integer'),
        ({'noise_seed': 2**80}, '64-bit'),
        ({'w0_seeds': [[1, 'x']]}, 'request.w0_seeds[0][1] must be a number'),
        ({'w0_seeds': [[1, 0.5, 2]]}, 'request.w0_seeds[0] must be a list of 2'),
        ({'w0_seeds': [[1, 1.0]] * (wire.MAX_SEQ_LEN + 1)}, 'at most'),
        ({'w0_seeds': {'1': 1.0}}, 'must be a list'),
        ({'input_transform': [[1, 0], [0, 1]]}, 'list of 3'),
        ({'stamp': 5}, 'unknown field'),
        ({'exec': 'import os'}, "unknown field(s) ['exec']"),
        ([1, 2], 'request must be an object'),
        (None, 'request must be an object'),
    ],
)
def test_request_from_wire_refuses_bad_fields(value, needle):
    with pytest.raises(WireError) as e:
        wire.request_from_wire(value)
    assert e.value.code == 'field' and needle in str(e.value)


@pytest.mark.parametrize('codec', ['png', 'raw'])
def test_lossless_codecs_are_exact(codec):
    img = _image()
    data = wire.encode_image(img, codec, 90)
    np.testing.assert_array_equal(wire.decode_image(data, codec, img.shape), img)


@pytest.mark.parametrize('codec', ['jpeg', 'webp'])
def test_lossy_codecs_are_close_and_smaller_at_lower_quality(codec):
    img = _image(128, 128)
    hi, lo = wire.encode_image(img, codec, 95), wire.encode_image(img, codec, 20)
    assert len(lo) < len(hi)
    back = wire.decode_image(hi, codec, img.shape)
    assert back.shape == img.shape and np.abs(back.astype(int) - img).mean() < 12


def test_decode_image_refuses_wrong_sizes_and_garbage():
    img = _image(16, 16)
    png = wire.encode_image(img, 'png', 90)
    for data, codec, shape, needle in [
        (png, 'png', (16, 17, 3), 'the message said'),
        (b'\x89PNG garbage', 'png', (16, 16, 3), 'does not decode'),
        (png, 'jpeg', (16, 16, 3), 'does not decode'),
        (b'\0' * 10, 'raw', (16, 16, 3), 'must have 768 bytes'),
        (png, 'png', (0, 16, 3), 'sides'),
        (png, 'png', (10**6, 10**6, 3), 'sides'),
        (png, 'gif', (16, 16, 3), 'unknown image codec'),
    ]:
        with pytest.raises(WireError) as e:
            wire.decode_image(data, codec, shape)
        assert e.value.code == 'image' and needle in str(e.value), (codec, shape, str(e.value))


def test_result_round_trip_with_images():
    net = NetInfo('a.pkl', '/srv/a.pkl', 'stylegan2', 64, 3, 512, 0, 512, 12, True, False)
    res = RenderResult(
        stamp=3,
        image=_image(64, 64),
        fft=_image(64, 64, seed=1),
        layers=(LayerInfo('b4', (1, 512, 4, 4), 'float32'), LayerInfo('output', (1, 3, 64, 64), 'float32')),
        stats={'mean': (0.1, 0.2), 'std': (1.0, float('nan'))},
        net=net,
        refused_names=('os.system',),
        render_ms=12.5,
        impl={'filtered_lrelu': 'ref'},
        device='cpu',
        layer_name='output',
        sel_channels=3,
        error_detail='Traceback ...',
        available_devices=('cuda', 'cpu'),
    )
    msg, blob = wire.result_to_wire(res, 77, wire.FrameEncoding('png'))
    [(version, parsed, got_blob)] = wire.FrameReader(wire.SERVER_TO_CLIENT).feed(wire.encode_message(msg, blob))
    back = wire.result_from_wire(parsed, got_blob)
    assert version == wire.PROTOCOL_VERSION and back.stamp == 77
    np.testing.assert_array_equal(back.image, res.image)
    np.testing.assert_array_equal(back.fft, res.fft)
    assert back.net == net and back.layers == res.layers and back.impl == res.impl
    assert back.stats['mean'] == (0.1, 0.2) and back.stats['std'] == (1.0, None)  # NaN travels as missing.
    assert back.available_devices == ('cuda', 'cpu') and back.refused_names == ('os.system',)


def test_auto_encoding_is_lossless_up_to_256_px():
    enc = wire.FrameEncoding()
    assert enc.codec_for((64, 64, 3)) == 'png' and enc.codec_for((256, 256, 3)) == 'png'
    assert enc.codec_for((512, 512, 3)) == 'jpeg'
    with pytest.raises(ValueError, match='codec'):
        wire.FrameEncoding('bmp')
    with pytest.raises(ValueError, match='quality'):
        wire.FrameEncoding('jpeg', 0)


def test_result_from_wire_refuses_hostile_results():
    msg, blob = wire.result_to_wire(RenderResult(stamp=1, image=_image(8, 8)), 1, wire.FrameEncoding('raw'))
    bad_blob = dict(msg, images=[dict(msg['images'][0], nbytes=10**9)])
    with pytest.raises(WireError, match='within the message'):
        wire.result_from_wire(bad_blob, blob)
    with pytest.raises(WireError, match='describe all'):
        wire.result_from_wire(msg, blob + b'extra')
    with pytest.raises(WireError, match='unknown field'):
        wire.result_from_wire(dict(msg, result=dict(msg['result'], evil=1)), blob)
    with pytest.raises(WireError, match='result.render_ms must be a number'):
        wire.result_from_wire(dict(msg, result=dict(msg['result'], render_ms='fast')), blob)


def test_frame_reader_handles_split_and_joined_frames():
    frames = [wire.encode_message({'type': 'ping', 't': i}) for i in range(5)]
    stream = b''.join(frames)
    reader = wire.FrameReader(wire.CLIENT_TO_SERVER)
    got = []
    for i in range(len(stream)):  # One byte at a time.
        got += reader.feed(stream[i : i + 1])
    assert [m['t'] for _, m, _ in got] == list(range(5)) and not reader.mid_frame
    assert [m['t'] for _, m, _ in wire.FrameReader(wire.CLIENT_TO_SERVER).feed(stream)] == list(range(5))


def test_frame_reader_refuses_huge_length_prefix_from_the_header_alone():
    header = wire.HEADER.pack(wire.MAGIC, wire.PROTOCOL_VERSION, 0, 2**32 - 1, 0)
    with pytest.raises(WireError) as e:
        wire.FrameReader(wire.CLIENT_TO_SERVER).feed(header)
    assert e.value.code == 'size' and e.value.fatal
    blob_header = wire.HEADER.pack(wire.MAGIC, wire.PROTOCOL_VERSION, 0, 10, 1)  # Clients may send no blob.
    with pytest.raises(WireError, match='too large'):
        wire.FrameReader(wire.CLIENT_TO_SERVER).feed(blob_header)


def test_frame_reader_bad_magic_is_fatal_and_bad_json_is_not():
    with pytest.raises(WireError) as e:
        wire.FrameReader(wire.CLIENT_TO_SERVER).feed(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    assert e.value.code == 'magic' and e.value.fatal
    bad = [b'{not json', b'[1, 2]', b'{"t": 1}', b'{"type": NaN}', b'\xff\xfe', b'[' * 100000]
    stream = b''.join(wire.HEADER.pack(wire.MAGIC, 1, 0, len(b), 0) + b for b in bad if len(b) < 65536)
    stream += wire.encode_message({'type': 'ping', 't': 1})
    got = wire.FrameReader(wire.CLIENT_TO_SERVER).feed(stream)
    assert all(isinstance(m, WireError) and m.code == 'json' and not m.fatal for _, m, _ in got[:-1])
    assert got[-1][1] == {'type': 'ping', 't': 1}
    deep = b'[' * 60000
    [(_, err, _)] = wire.FrameReader(wire.CLIENT_TO_SERVER).feed(
        wire.HEADER.pack(wire.MAGIC, 1, 0, len(deep), 0) + deep
    )
    assert isinstance(err, WireError)


def test_frame_reader_survives_random_mutations():
    """Bounded fuzz: mutated valid frames either parse, come back as a WireError item, or raise WireError."""
    rng = random.Random(1234)
    base = wire.encode_message({'type': 'render', 'stamp': 3, 'request': wire.request_to_wire(FULL_REQUEST)})
    for _ in range(400):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        reader = wire.FrameReader(wire.CLIENT_TO_SERVER)
        try:
            for _, msg, _ in reader.feed(bytes(data)):
                if isinstance(msg, dict) and isinstance(msg.get('request'), dict):
                    try:
                        wire.request_from_wire(msg['request'])
                    except WireError:
                        pass
        except WireError as e:
            assert e.fatal


def test_version_mismatch_names_both_versions():
    with pytest.raises(WireError) as e:
        wire.check_version(wire.PROTOCOL_VERSION + 1, 'client')
    text = str(e.value)
    assert e.value.code == 'version' and e.value.fatal
    assert f'v{wire.PROTOCOL_VERSION + 1}' in text and f'v{wire.PROTOCOL_VERSION}' in text and 'same sg3viz' in text


# ---- root confinement ---------------------------------------------------------------------------------------------


@pytest.fixture
def root_tree(tmp_path):
    root = tmp_path / 'root'
    (root / 'run1').mkdir(parents=True)
    (root / 'net.pkl').write_bytes(b'x')
    (root / 'run1' / 'network-snapshot-000001.pkl').write_bytes(b'x')
    (root / 'run1' / 'network-snapshot-000002.pkl').write_bytes(b'x')
    outside = tmp_path / 'secret'
    outside.mkdir()
    (outside / 'secret.pkl').write_bytes(b'x')
    (outside / 'network-snapshot-000009.pkl').write_bytes(b'x')
    (root / 'link_out.pkl').symlink_to(outside / 'secret.pkl')
    (root / 'dir_out').symlink_to(outside)
    (root / 'run2').mkdir()
    (root / 'run2' / 'network-snapshot-000005.pkl').symlink_to(outside / 'network-snapshot-000009.pkl')
    return root, outside


def test_confine_source_accepts_files_under_the_root(root_tree):
    root, _ = root_tree
    r = os.path.realpath(root)
    assert confine_source('net.pkl', str(root)) == os.path.join(r, 'net.pkl')
    assert confine_source(str(root / 'net.pkl'), str(root)) == os.path.join(r, 'net.pkl')
    assert confine_source(f'file://{root}/net.pkl', str(root)) == os.path.join(r, 'net.pkl')
    assert confine_source('run1', str(root)) == os.path.join(r, 'run1', 'network-snapshot-000002.pkl')
    assert confine_source('run1/../net.pkl', str(root)) == os.path.join(r, 'net.pkl')
    assert confine_source(None, str(root)) is None
    assert confine_source('https://example.org/a.pkl', str(root)) == 'https://example.org/a.pkl'
    assert confine_source('../anything', None) == '../anything'  # No root: unchanged.


@pytest.mark.parametrize(
    'source',
    [
        '../secret/secret.pkl',
        'run1/../../secret/secret.pkl',
        '/etc/passwd',
        'link_out.pkl',
        'dir_out/secret.pkl',
        'dir_out',
        'run2',
        'file:///etc/passwd',
        'file://{outside}/secret.pkl',
        '{outside}/secret.pkl',
    ],
)
def test_confine_source_refuses_escapes(root_tree, source):
    root, outside = root_tree
    with pytest.raises(WireError) as e:
        confine_source(source.format(outside=outside), str(root))
    assert e.value.code == 'path' and 'outside the server root' in str(e.value)


def test_confine_source_refuses_other_url_schemes(root_tree):
    root, _ = root_tree
    with pytest.raises(WireError, match='unsupported URL scheme'):
        confine_source('ftp://example.org/a.pkl', str(root))


def test_list_server_files_stays_under_the_root(root_tree):
    root, outside = root_tree
    listed, runs = list_server_files(str(root))
    assert listed == os.path.realpath(root)
    flat = [p for _, files in runs for p in files]
    assert [os.path.basename(p) for p in runs[0][1]] == ['net.pkl']  # Loose files first; the link out is left out.
    assert any(p.endswith('run1/network-snapshot-000002.pkl') for p in flat)
    assert runs[1][1][0].endswith('000002.pkl')  # Newest first.
    assert not any(str(outside) in os.path.realpath(p) for p in flat)
    assert not any(d.endswith('dir_out') for d, _ in runs)


def test_tall_frames_travel_as_parallel_bands():
    assert wire.band_rows(511, 8) == [511] and wire.band_rows(1024, 2) == [1024] and wire.band_rows(1024, 3) == [1024]
    assert wire.band_rows(600, 4) == [304, 296] and wire.band_rows(1024, 16) == [256] * 4
    assert all(r % 16 == 0 for r in wire.band_rows(1000, 6)[:-1]) and sum(wire.band_rows(1000, 6)) == 1000
    img = _image(600, 96, seed=3)
    msg, blob = wire.result_to_wire(RenderResult(stamp=1, image=img), 1, wire.FrameEncoding('png'), num_cpus=8)
    bands = msg['images'][0]['bands']
    assert len(bands) >= 2 and sum(r for r, _ in bands) == 600
    np.testing.assert_array_equal(wire.result_from_wire(msg, blob).image, img)  # Lossless across band seams.
    msg_j, blob_j = wire.result_to_wire(RenderResult(stamp=1, image=img), 1, wire.FrameEncoding('jpeg', 95), num_cpus=4)
    assert np.abs(wire.result_from_wire(msg_j, blob_j).image.astype(int) - img).mean() < 8


@pytest.mark.parametrize(
    ('bands', 'needle'),
    [
        ([[600, 10]], 'a list of 2..'),
        ([[300, 10]] * 17, 'a list of 2..'),
        ([[300, 5], [301, 5]], 'rows adding up to 600'),
        ([[300, 1], [300, 2]], 'sizes adding up to'),
        ([[0, 0], [600, 0]], 'positive row counts'),
        ([[300, 'x'], [300, 1]], 'must be an integer'),
        ('many', 'a list of 2..'),
    ],
)
def test_hostile_band_descriptions_are_refused(bands, needle):
    img = _image(600, 32)
    msg, blob = wire.result_to_wire(RenderResult(stamp=1, image=img), 1, wire.FrameEncoding('png'), num_cpus=8)
    msg['images'][0]['bands'] = bands
    with pytest.raises(WireError, match=needle.replace('.', r'\.')):
        wire.result_from_wire(msg, blob)
