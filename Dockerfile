# syntax=docker/dockerfile:1
# Témoin application image: web (gunicorn), Celery workers and beat, dockd, migrations.
# Every service of compose.yaml that runs Témoin uses this one image with a different command.

# Build stage: the C reader of custody verification (audit/_chainscan.c, docs/custody.md §4), compiled
# against libpq and OpenSSL; only the built module goes into the image.
FROM python:3.11-slim-bookworm AS chainscan
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libpq-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py ./
COPY audit/_chainscan.c audit/
RUN pip install "setuptools>=77" \
    && python setup.py build_ext --inplace \
    && cd audit && python -c "import _chainscan"

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    TEMOIN_DATA_DIR=/var/lib/temoin

# ffmpeg and ffprobe: probing, remuxing and transcoding clips into playback copies. libpq5: the C
# reader of custody verification (libssl3 comes with the base image).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg libpq5 \
    && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged uid/gid: dock hosts mount camera volumes readable and writable by it
# (docs/deployment.md), since offloading ends by wiping the verified clips from the camera.
RUN groupadd --system --gid 10001 temoin \
    && useradd --system --uid 10001 --gid temoin --home-dir /var/lib/temoin --no-create-home \
        --shell /usr/sbin/nologin temoin \
    && install -d -o temoin -g temoin -m 0750 /var/lib/temoin \
    && install -d -o temoin -g temoin -m 0700 /var/lib/temoin/keys
# /var/lib/temoin/keys exists in the image, owned by temoin: a new named volume mounted there
# (temoin-keys in compose.yaml) starts as a copy of it, so the custody signing key can be created.

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them: the exact versions and
# hashes of requirements.lock (the runtime dependencies of pyproject.toml, locked with uv;
# tests/deploy/test_runtime_install.py installs and runs the same set).
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

COPY . .
COPY --from=chainscan /src/audit/_chainscan.*.so audit/
# The extension is built above (no compiler here); check that it loads.
RUN TEMOIN_BUILD_EXTENSIONS=0 pip install --no-deps . \
    && python -c "import audit._chainscan"

# Static files into STATIC_ROOT (TEMOIN_DATA_DIR/static). The key only lets settings load here;
# the real one comes from the environment at run time.
# With DJANGO_DEBUG=false they get hashed names and gzip copies (WhiteNoise's manifest storage),
# which the web process needs at run time.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret DJANGO_DEBUG=false \
        python manage.py collectstatic --noinput \
    && chown -R temoin:temoin /var/lib/temoin

USER temoin:temoin
EXPOSE 8000

CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--threads", "8", "--access-logfile", "-"]
