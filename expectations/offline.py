"""Great Expectations' Data Docs without a network: every CDN stylesheet and script made local.

GX's templates load Bootstrap, jQuery, Font Awesome and a few plugins from CDNs, so offline the
pages are unstyled. After each checkpoint the site is rewritten: each CDN reference becomes a
copy under ``static/vendor/`` taken from an installed XStatic package (Bootstrap 4, jQuery 3.7.1,
Font Awesome 6, all in the ``platform`` extra); references with no packaged copy (table filters,
date picker, Vega charts, the dark theme) are removed (the pages stay readable without them), and
links out (greatexpectations.io) are disarmed. :func:`external_urls` lists what remains (tests).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
from pathlib import Path

#: CDN file name -> (XStatic package, path in its data directory, local name under static/vendor)
LOCAL_COPIES: dict[str, tuple[str, str, str]] = {
    "bootstrap.min.css": ("xstatic.pkg.bootstrap", "css/bootstrap.min.css", "bootstrap/bootstrap.min.css"),
    "bootstrap.min.js": ("xstatic.pkg.bootstrap", "js/bootstrap.bundle.min.js", "bootstrap/bootstrap.bundle.min.js"),
    "jquery-3.7.1.min.js": ("xstatic.pkg.jquery", "jquery.min.js", "jquery/jquery.min.js"),
    "all.min.css": ("xstatic.pkg.font_awesome", "css/all.min.css", "font-awesome/css/all.min.css"),
}
#: Directories copied beside a local file (Font Awesome's CSS reads ../webfonts/).
_ALSO = {"xstatic.pkg.font_awesome": [("webfonts", "font-awesome/webfonts")]}
_TAG = re.compile(r"<(link|script)\b[^>]*?(?:href|src)=\"(https?://[^\"]+)\"[^>]*>(?:\s*</script>)?", re.I)
_ANY_URL = re.compile(r"(?:href|src)=\"(https?://[^\"]+)\"", re.I)


def _data_dir(package: str) -> Path:
    return Path(importlib.import_module(package).BASE_DIR)


def vendor(site: Path) -> Path:
    """Copy the local files into ``site/static/vendor`` (once) and return that directory."""
    target = site / "static" / "vendor"
    for package, src, local in LOCAL_COPIES.values():
        dest = target / local
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_data_dir(package) / src, dest)
    for package, dirs in _ALSO.items():
        for src, local in dirs:
            if not (target / local).exists():
                shutil.copytree(_data_dir(package) / src, target / local)
    return target


def make_offline(site: Path) -> int:
    """Rewrite every page of the site to local copies; returns how many references were changed."""
    site = Path(site)
    if not site.is_dir():
        return 0
    target = vendor(site)
    changed = 0
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        rel = Path(os.path.relpath(target, page.parent)).as_posix()

        def local(match: re.Match, rel: str = rel) -> str:
            tag, url = match.group(1).lower(), match.group(2)
            copy = LOCAL_COPIES.get(url.rsplit("/", 1)[-1])
            if copy is None:
                return f"<!-- offline: {tag} {url.split('//', 1)[1].split('/', 1)[0]} left out -->"
            attr = "href" if tag == "link" else "src"
            return match.group(0).replace(f'{attr}="{url}"', f'{attr}="{rel}/{copy[2]}"').replace(
                " integrity=", " data-integrity="
            )

        new, n = _TAG.subn(local, text)
        new, m = _ANY_URL.subn(lambda mt: mt.group(0).replace(mt.group(1), "#"), new)
        if n or m:
            page.write_text(new, encoding="utf-8")
            changed += n + m
    return changed


def external_urls(site: Path) -> dict[str, list[str]]:
    """Pages (relative) -> the external URLs they still load or link to (none, after make_offline)."""
    out: dict[str, list[str]] = {}
    for page in Path(site).rglob("*.html"):
        urls = _ANY_URL.findall(page.read_text(encoding="utf-8"))
        if urls:
            out[str(page.relative_to(site))] = urls
    return out
