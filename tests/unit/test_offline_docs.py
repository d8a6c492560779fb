"""Data Docs open offline: every CDN reference of GX's templates becomes a local copy or goes."""

from __future__ import annotations

from pathlib import Path

from expectations.offline import external_urls, make_offline

PAGE = """<html><head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"
 integrity="sha384-x" crossorigin="anonymous"/>
<link rel="stylesheet" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css"/>
<link rel="stylesheet" href="https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css">
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js"></script>
<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js"></script>
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<script src="https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js"></script>
</head><body><a href="https://greatexpectations.io">GX</a></body></html>"""


def test_a_gx_page_loads_nothing_from_the_network_after_the_rewrite(tmp_path: Path):
    site = tmp_path / "data_docs"
    (site / "validations" / "suite").mkdir(parents=True)
    (site / "index.html").write_text(PAGE)
    (site / "validations" / "suite" / "run.html").write_text(PAGE)
    assert len(external_urls(site)) == 2
    make_offline(site)
    assert external_urls(site) == {}
    deep = (site / "validations" / "suite" / "run.html").read_text()
    assert 'href="../../static/vendor/bootstrap/bootstrap.min.css"' in deep
    assert 'src="../../static/vendor/jquery/jquery.min.js"' in deep and "integrity=" not in deep.replace("data-integrity", "")
    for local in ("bootstrap/bootstrap.min.css", "bootstrap/bootstrap.bundle.min.js", "jquery/jquery.min.js",
                  "font-awesome/css/all.min.css", "font-awesome/webfonts", "fupin/table.js"):
        assert (site / "static" / "vendor" / local).exists(), local
    assert 'src="../../static/vendor/fupin/table.js"' in deep  # the generated table renderer
    # idempotent: a second pass after the next checkpoint changes nothing
    assert make_offline(site) == 0


def test_docs_server_serves_both_sites_on_loopback_and_nothing_else(tmp_path: Path):
    import urllib.error
    import urllib.request

    from fupin.docs_cli import serve

    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "manifest.json").write_text("{}")
    (tmp_path / "gx").mkdir()
    (tmp_path / "gx" / "index.html").write_text("<html>gx</html>")
    (tmp_path / "secret.txt").write_text("no")
    httpd = serve({"dbt": tmp_path / "dbt", "data-docs": tmp_path / "gx"}, 0)
    try:
        host, port = httpd.server_address[:2]
        assert host == "127.0.0.1"
        base = f"http://127.0.0.1:{port}"
        assert urllib.request.urlopen(f"{base}/dbt/manifest.json").read() == b"{}"
        assert b"gx" in urllib.request.urlopen(f"{base}/data-docs/index.html").read()
        for path in ("/secret.txt", "/dbt/../secret.txt", "/other/x"):
            try:
                urllib.request.urlopen(base + path)
                raise AssertionError(f"{path} was served")
            except urllib.error.HTTPError as exc:
                assert exc.code == 404
    finally:
        httpd.shutdown()
