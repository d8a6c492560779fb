# The platform's own services (stream worker, sink, migrations, builds) for server mode.
# Built by docker-compose.yml; the entrypoint is the `fupin` command.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FUPIN_MODE=server \
    FUPIN_DATA_DIR=/data

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that code changes do not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The source tree: schemas/, dbt_project/ and reference data are read from it at run time,
# hence an editable install rather than a wheel.
COPY . .
RUN pip install --no-deps -e . \
    && useradd --create-home --uid 10001 --user-group fupin \
    && mkdir -p /data \
    && mkdir -p /app/expectations && chown -R fupin:fupin /data /app/dbt_project /app/expectations

USER fupin
VOLUME ["/data"]

ENTRYPOINT ["fupin"]
CMD ["--help"]
