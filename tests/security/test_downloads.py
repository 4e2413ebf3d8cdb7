"""Issue 11 item 4: a download cut off by a server that sends no Content-Length never enters the cache."""

from __future__ import annotations

import contextlib
import http.server
import pickle

import pytest

from engine import loading
from metrics import metric_utils
from tests.http_server import serve_http


@contextlib.contextmanager
def _server(body: bytes):
    """Serves `body` for every path over HTTP/1.0 without Content-Length, then closes (a cut transfer looks done)."""
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header('Content-Type', 'application/octet-stream')
            self.end_headers()
            self.wfile.write(body)

    with serve_http(Handler) as url:
        yield url, requests


def _valid_pickle() -> bytes:
    return pickle.dumps({'G_ema': None, 'weights': list(range(5000))})


def test_cut_network_download_never_enters_the_cache(tmp_path):
    cache = tmp_path / 'cache'
    with _server(_valid_pickle()[:3000]) as (base, requests):
        with pytest.raises(loading.LoadError, match='incomplete download: the pickle does not parse'):
            loading.download(f'{base}/net.pkl', cache=cache, retries=2, timeout=5, progress=False)
        assert len(requests) == 2  # retried: an interrupted transfer may succeed next time
        # resolve_source (what calc_metrics and resume use before loading) must not find a corrupt cached file either.
        with pytest.raises(loading.LoadError, match='could not download'):
            loading.resolve_source(f'{base}/net.pkl', cache=cache, retries=1, timeout=5, progress=False)
    assert list(cache.iterdir()) == []


def test_complete_download_without_length_is_cached(tmp_path):
    cache = tmp_path / 'cache'
    with _server(_valid_pickle()) as (base, requests):
        path = loading.download(f'{base}/net.pkl', cache=cache, retries=1, timeout=5, progress=False)
        assert path.read_bytes() == _valid_pickle()
        loading.download(f'{base}/net.pkl', cache=cache, retries=1, timeout=5, progress=False)
    assert requests == ['/net.pkl']


def test_cut_detector_download_never_enters_the_cache(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        z.writestr('archive/data.pkl', b'x' * 5000)
    with _server(buf.getvalue()[:2000]) as (base, _):
        with pytest.raises(metric_utils.MetricError, match='zip does not parse'):
            metric_utils.resolve_detector_source(f'{base}/inception-2015-12-05.pkl', cache_dir=tmp_path)
    downloads = tmp_path / 'downloads'
    assert not downloads.exists() or list(downloads.iterdir()) == []
